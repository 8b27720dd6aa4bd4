"""``siogw serve`` with ``[upstreams.N]`` in its ``siogw.toml`` (issue 14, finding 2).

The real gateway (a log host and one worker process, ADR 0007) on the demo world, with
three resources sent to real HTTP servers on 127.0.0.1: resource 1 to a healthy upstream,
resource 2 to a port where nothing listens (breaker threshold 1), resource 3 to an
upstream that drips one byte every 0.8 s (configured timeout 60 s). Which process holds a
connection is found out as in ``test_workers.py`` (the worker is stopped for a moment).

* both processes answer resource 1 through the upstream (the dispatcher is built from the
  configuration in each), which gets the query's request id as ``Idempotency-Key``;
* resource 2: ``UNAVAILABLE`` (request id released), and the health service
  ``siogw.upstream.2`` of that process goes ``NOT_SERVING`` while ``siogw.upstream.1``
  stays ``SERVING``;
* resource 3 with a client deadline of 3 s: the call ends and the gateway closes its
  connection to the upstream (the old connector kept reading in its thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import _common as c
from server.resources.dataset import DEMO_ENTITY_BIN, DEMO_PERSON_IIN
from siogw import demo
from siogw_api.v1 import query_pb2_grpc
from tests.server.resources.upstream import Upstream, down_url, serve
from tests.server.test_workers import TASK, Client, refusal, two_processes, world

__all__ = ["two_processes", "world"]  # fixtures used here

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def upstreams() -> Iterator[tuple[Upstream, Upstream, str]]:
    with serve(["ok"], payload={"from_upstream": True}) as ok, serve(["drip"]) as slow:
        config = f"""
[upstreams.1]
url = "{ok.url}"
allow_plain_http = true

[upstreams.2]
url = "{down_url()}"
allow_plain_http = true
attempts = 1
failure_threshold = 1
reset_timeout = 3600

[upstreams.3]
url = "{slow.url}"
allow_plain_http = true
timeout = 60
"""
        yield ok, slow, config


async def _query(client: Client, channel: aio.Channel, resource: int,
                 params: dict[str, str], timeout: float = 30) -> Any:
    query = c.build_query(resource, params, demo.BASIS, TASK, "upstream test")
    prepared = await asyncio.to_thread(c.prepare_query, query, client.signer)
    response = await query_pb2_grpc.QueryServiceStub(channel).Query(
        prepared.request(), metadata=client.metadata, timeout=timeout)
    return prepared, c.verify_result(response, prepared, client.verifier)


async def _health(channel: aio.Channel, service: str) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(answer.status)


def test_serve_answers_through_configured_upstreams_in_every_process(
    world: demo.World, two_processes: None
) -> None:
    with upstreams() as (ok, slow, config), demo.gateway_process(
        world, log_name="gw-upstreams.log", started=(started := []), extra_config=config,
    ) as port:
        from tests.server.test_workers import Gateway

        gw = Gateway(world, port, started[0], "gw-upstreams.log")
        (worker,) = gw.workers()

        async def scenario() -> dict[str, Any]:
            client = Client(world, port)
            out: dict[str, Any] = {}
            try:
                by_worker, by_host = await client.split(worker)
                await client.login(by_host[0])
                await client.consent(by_host[0])
                # resource 1 through the upstream, from each process
                for name, ch in (("worker", by_worker[0]), ("host", by_host[0])):
                    out[name] = await _query(client, ch, 1, {"iin": DEMO_PERSON_IIN})
                # resource 2: the upstream is down; the breaker (threshold 1) opens
                try:
                    await _query(client, by_worker[0], 2, {"bin": DEMO_ENTITY_BIN})
                except aio.AioRpcError as exc:
                    out["down"] = refusal(exc)
                deadline = time.monotonic() + 20
                while (status := await _health(by_worker[0], "siogw.upstream.2")) \
                        != health_pb2.HealthCheckResponse.NOT_SERVING:
                    assert time.monotonic() < deadline, "health never showed the breaker"
                    await asyncio.sleep(0.2)
                out["health2"] = status
                out["health1"] = await _health(by_worker[0], "siogw.upstream.1")
                # resource 3: the client's deadline (3 s) is far below the config's (60 s)
                try:
                    await _query(client, by_host[0], 3, {"iin": DEMO_PERSON_IIN}, timeout=3)
                except aio.AioRpcError as exc:
                    out["slow"] = exc.code()
            finally:
                await client.close()
            return out

        out = asyncio.run(scenario())
        for name in ("worker", "host"):
            _, outcome = out[name]
            assert outcome.data["from_upstream"] is True
            assert outcome.data["echo"] == {"resource": 1,
                                            "parameters": {"iin": DEMO_PERSON_IIN}}
        sent_ids = {h["idempotency-key"] for h in ok.headers}
        assert sent_ids == {out["worker"][0].request_id, out["host"][0].request_id}
        assert ok.calls == 2
        code, reason, _ = out["down"]
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
        assert out["health2"] == health_pb2.HealthCheckResponse.NOT_SERVING
        assert out["health1"] == health_pb2.HealthCheckResponse.SERVING
        assert out["slow"] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        # the gateway hung up on the dripping upstream (long before its 60 s timeout)
        assert slow.gone.wait(15) and slow.calls == 1
