"""Batch signing of results over a real gateway (issue 18, ADR 0011): SoftHSM token, TLS,
the audit log, both clients and ``siogw verify``.

The gateway runs with ``[signer] batch_window_ms = 1000``, ``batch_max = 8`` and
``batch_idle_sign = false`` (these tests are about the envelope, not the timing: with
idle signing on, the first of the queries sent at once could leave alone on the idle
token): a lone query is a batch of one (it waits out the window), and ``batch_max``
queries sent at once fill a batch, which leaves as soon as it is full. The batch each
result was signed in is read from its own signed statement (tree size), not from the
gateway's internals.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from clients import AsyncGatewayClient, GatewayClient, ResultVerificationError
from clients import _common as c
from signing import batch
from signing.wire import envelope_from_proto
from siogw import demo
from siogw_api.v1 import query_pb2, query_pb2_grpc

from .conftest import ServerThread

BATCH_MAX = 8
CASE = "CASE-BATCH-1"


class BatchWorld:
    def __init__(self, world: Any, port: int) -> None:
        self.world, self.port = world, port

    def person(self, name: str) -> Any:
        return self.world.people[name]

    def settings(self) -> dict[str, Any]:
        return {
            "ca_file": self.world.ca_file,
            "gateway_certificate": self.world.gateway_cert,
            "server_name": demo.TLS_NAME,
        }


@pytest.fixture(scope="module")
def batch_world(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[BatchWorld]:
    from server.config import load_config

    home = tmp_path_factory.mktemp("batch-gw")
    world = demo.build_world(home, token_store=softhsm_store,
                             label_prefix=f"bs{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    demo.bootstrap_operator(world, world.people["operator"])
    config = load_config(home, env={}, overrides={
        "signer": {"batch_window_ms": 1000, "batch_max": BATCH_MAX,
                   "batch_idle_sign": False},
        "limits": {"logins_per_peer_per_minute": 100_000,
                   "logins_per_user_per_minute": 100_000},
    })
    assert config.signer.batch_window_ms == 1000 and not config.signer.batch_idle_sign
    server = ServerThread(config)
    port = server.start()
    try:
        demo.bootstrap_users(world, port)
        yield BatchWorld(world, port)
    finally:
        server.stop()


def _statement(envelope: Any) -> batch.BatchStatement:
    proof = envelope.signatures[0].batch
    assert proof is not None, "the result is not batch-signed"
    return batch.parse_statement(proof.statement)


def _query(client: Any, i: int) -> Any:
    return client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, f"batch {i}")


def test_sync_client_batch_of_one_and_full_batch(batch_world: BatchWorld) -> None:
    with GatewayClient(f"127.0.0.1:{batch_world.port}", **batch_world.settings()) as client:
        demo.login(batch_world.world, client, batch_world.person("analyst"))
        client.sign_consent()
        one = _query(client, 0)  # verified by the client as every result is
        assert one.resource == 1 and one.receipt is not None
        st1 = _statement(one.result_envelope)
        assert st1.size == 1 and one.result_envelope.signatures[0].batch.path == ()
        with ThreadPoolExecutor(BATCH_MAX) as pool:
            outs = list(pool.map(lambda i: _query(client, i), range(BATCH_MAX)))
    statements = [_statement(o.result_envelope) for o in outs]
    assert {s.size for s in statements} == {BATCH_MAX}
    assert len({s.root for s in statements}) == 1  # one signature for all of them
    assert sorted(o.result_envelope.signatures[0].batch.index for o in outs) == list(
        range(BATCH_MAX))
    assert len({o.result_envelope.signatures[0].sig for o in outs}) == 1


def _raw_calls(batch_world: BatchWorld, n: int) -> tuple[list[Any], list[Any], Any]:
    """``n`` queries sent at once over the raw stub with the asyncio client's session:
    (prepared queries, responses, the client's verifier)."""
    w = batch_world.world

    async def run() -> tuple[list[Any], list[Any], Any]:
        async with AsyncGatewayClient(f"127.0.0.1:{batch_world.port}",
                                      **batch_world.settings()) as client:
            analyst = batch_world.person("analyst")
            await client.login(analyst.user_id, analyst.signer(), factor="sms",
                               sms_code_provider=demo.sms_reader(w, analyst.user_id))
            await client.sign_consent()
            # the library's own path first: a full batch through AsyncGatewayClient.query
            outs = await asyncio.gather(*(
                client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, f"async {i}")
                for i in range(BATCH_MAX)))
            assert {_statement(o.result_envelope).size for o in outs} == {BATCH_MAX}
            prepared = [
                c.prepare_query(c.build_query(1, demo.demo_parameters(1), demo.BASIS, CASE,
                                              f"raw {i}"), client.signer)
                for i in range(n)
            ]
            stub = query_pb2_grpc.QueryServiceStub(client._channel)  # type: ignore[no-untyped-call]
            meta = client._metadata(auth=True)
            responses = await asyncio.gather(
                *(stub.Query(p.request(), metadata=meta, timeout=30) for p in prepared))
            return prepared, list(responses), client._verifier

    return asyncio.run(run())


def test_asyncio_client_full_batch_and_tampering_refused(batch_world: BatchWorld) -> None:
    prepared, responses, verifier = _raw_calls(batch_world, BATCH_MAX)
    for p, r in zip(prepared, responses, strict=True):
        out = c.verify_result(r, p, verifier)
        assert _statement(out.result_envelope).size == BATCH_MAX
    response, p = responses[3], prepared[3]

    def refused(mutate: Any) -> str:
        tampered = query_pb2.QueryResponse()
        tampered.CopyFrom(response)
        mutate(tampered.result.signatures[0])
        with pytest.raises(ResultVerificationError) as ei:
            c.verify_result(tampered, p, verifier)
        return ei.value.diagnostics()

    def flip(b: bytes) -> bytes:
        return bytes([b[0] ^ 1]) + b[1:]

    def path(sig: Any) -> None:
        sig.batch.path[0] = flip(sig.batch.path[0])

    def root(sig: Any) -> None:
        doc = json.loads(sig.batch.statement)
        doc["root"] = flip(bytes.fromhex(doc["root"])).hex()
        sig.batch.statement = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def index(sig: Any) -> None:
        sig.batch.index = (sig.batch.index + 1) % BATCH_MAX

    assert "does not lead to the signed root" in refused(path)
    refused(root)  # the statement's signature no longer verifies
    refused(index)
    # the leaf: another result under this one's proof
    other = query_pb2.QueryResponse()
    other.CopyFrom(response)
    other.result.payload = responses[4].result.payload
    with pytest.raises(ResultVerificationError):
        c.verify_result(other, p, verifier)
    # and the payload's own bytes
    other.result.payload = flip(bytes(response.result.payload))
    with pytest.raises(ResultVerificationError):
        c.verify_result(other, p, verifier)


def _verify_cli(path: Path, world: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siogw", "verify", str(path), "--trust", str(world.ca_file)],
        capture_output=True, text=True, timeout=60,
    )


def test_siogw_verify_exported_batched_result(batch_world: BatchWorld, tmp_path: Path) -> None:
    prepared, responses, _ = _raw_calls(batch_world, BATCH_MAX)
    envelope = envelope_from_proto(responses[0].result)
    assert _statement(envelope).size == BATCH_MAX
    good = tmp_path / "result.json"
    good.write_bytes(envelope.to_json())
    v = _verify_cli(good, batch_world.world)
    assert v.returncode == 0, v.stderr
    assert f"result for query {prepared[0].request_id} produced" in v.stdout
    assert "batch-signed: leaf" in v.stdout

    doc = json.loads(good.read_text())
    ext = doc["signatures"][0]["batch"]
    first = bytearray(base64.b64decode(ext["path"][0]))
    first[0] ^= 1
    cases: dict[str, Any] = {"path": {**ext, "path": [base64.b64encode(first).decode(),
                                                      *ext["path"][1:]]}}
    statement = json.loads(base64.b64decode(ext["statement"]))
    statement["root"] = "00" * 32
    cases["root"] = {**ext, "statement": base64.b64encode(
        json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()).decode()}
    for name, bad in cases.items():
        doc["signatures"][0]["batch"] = bad
        f = tmp_path / f"bad-{name}.json"
        f.write_text(json.dumps(doc))
        v = _verify_cli(f, batch_world.world)
        assert v.returncode != 0 and "bad signature" in v.stderr, (name, v.stderr)
        assert v.stderr.count("\n") == 1 and "Traceback" not in v.stderr, v.stderr
    # the leaf: another payload
    doc["signatures"][0]["batch"] = ext
    doc["payload"] = base64.b64encode(bytes(responses[1].result.payload)).decode()
    f = tmp_path / "bad-leaf.json"
    f.write_text(json.dumps(doc))
    v = _verify_cli(f, batch_world.world)
    assert v.returncode != 0 and "bad signature" in v.stderr, v.stderr
