"""Prometheus metrics (issue 17, point 1): a running ``siogw serve --workers 2`` is scraped
at ``/metrics`` on its own port, and the counters move as calls are made -- the worker's
included (prometheus-client's multi-process mode, ``$SIOGW_HOME/run/metrics``)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

from server.config import MetricsSettings, load_config
from siogw import demo
from siogw_api.errors import ConfigError
from tests.server.test_workers import ANALYST, Client, refusal, serve

QUERY = ("siogw.v1.QueryService", "Query")


@pytest.fixture(scope="module")
def world(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory) -> demo.World:
    from server.admin import execute
    from server.store import Store
    from siogw_api.v1 import admin_pb2

    home = tmp_path_factory.mktemp("mx")
    world = demo.build_world(home, people=(ANALYST,), token_store=softhsm_store,
                             label_prefix=f"mx{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    store = Store(load_config(home, env={}).effective_database_url).open()
    analyst = world.people["analyst"]
    try:
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=analyst.user_id, full_name=analyst.full_name, role=analyst.role,
            phone=analyst.phone, certificate_der=demo._der(analyst.certificate()),
        )))
    finally:
        store.close()
    return world


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


@pytest.mark.slow
def test_a_scrape_of_two_processes_sees_the_counters_move(
    world: demo.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIOGW_WORKERS", "2")
    mport = free_port()
    monkeypatch.setenv("SIOGW_METRICS_PORT", str(mport))
    with serve(world, "gw-metrics.log") as gw:
        assert mport != gw.port
        (worker,) = gw.workers()
        # the multi-process directory: private, under the home
        mdir = world.home / "run" / "metrics"
        assert mdir.stat().st_mode & 0o777 == 0o700
        before = scrape(mport)

        async def run() -> tuple[int, int]:
            client = Client(world, gw.port)
            try:
                mine, host = await client.split(worker)
                await client.login(host[0])
                await client.consent(host[0])
                prepared = await client.prepare(6)
                for i, p in enumerate(prepared):  # three on each process
                    await client.query((mine if i % 2 else host)[i // 2 % len(mine)], p)
                # a replay, refused by the worker: ALREADY_EXISTS
                with pytest.raises(aio.AioRpcError) as err:
                    await client.query(mine[0], prepared[1])
                code, _reason, _ = refusal(err.value)
                assert code == grpc.StatusCode.ALREADY_EXISTS
                return len(prepared), 1
            finally:
                await client.close()

        answered, replays = asyncio.run(run())
        after = scrape(mport)
        log_text = gw.log_text()

    # the worker wrote samples of its own (and the log host summed them)
    assert any(p.name.endswith(f"_{worker}.db") for p in mdir.iterdir()), \
        sorted(p.name for p in mdir.iterdir())
    ok = "siogw_grpc_calls_total"
    assert (value(after, ok, service=QUERY[0], method=QUERY[1], code="OK")
            - value(before, ok, service=QUERY[0], method=QUERY[1], code="OK")) == answered, \
        log_text[-2000:]
    assert (value(after, ok, service=QUERY[0], method=QUERY[1], code="ALREADY_EXISTS")
            - value(before, ok, service=QUERY[0], method=QUERY[1], code="ALREADY_EXISTS")
            ) == replays
    assert value(after, ok, service="siogw.v1.AuthService", method="CompleteLogin",
                 code="OK") >= 1
    assert (value(after, "siogw_grpc_call_seconds_count", service=QUERY[0], method=QUERY[1])
            - value(before, "siogw_grpc_call_seconds_count", service=QUERY[0],
                    method=QUERY[1])) == answered + replays
    assert (total(after, "siogw_refusals_total") - total(before, "siogw_refusals_total")
            ) == replays
    assert (value(after, "siogw_replay_claims_total", outcome="claimed")
            - value(before, "siogw_replay_claims_total", outcome="claimed")) == answered
    assert (value(after, "siogw_replay_claims_total", outcome="replayed")
            - value(before, "siogw_replay_claims_total", outcome="replayed")) == replays
    assert (value(after, "siogw_upstream_calls_total", resource="1", outcome="ok")
            - value(before, "siogw_upstream_calls_total", resource="1", outcome="ok")
            ) == answered
    signed = (total(after, "siogw_signer_operations_total")
              - total(before, "siogw_signer_operations_total"))
    assert signed == answered
    assert total(after, "siogw_signer_errors_total") == 0
    # the audit log: every query and refusal (and the login's records) appended, fsync'd
    appended = (value(after, "siogw_audit_records_appended_total")
                - value(before, "siogw_audit_records_appended_total"))
    assert appended >= answered + replays
    assert (value(after, "siogw_audit_group_commit_records_sum")
            - value(before, "siogw_audit_group_commit_records_sum")) == appended
    assert value(after, "siogw_audit_fsync_seconds_count") > value(
        before, "siogw_audit_fsync_seconds_count")
    assert value(after, "siogw_audit_log_state", state="ok") == 1
    assert value(after, "siogw_audit_log_state", state="failed") == 0
    assert value(after, "siogw_sessions_live") >= 1
    assert 0 <= value(after, "siogw_audit_checkpoint_age_seconds") < 3600
    assert ("siogw_audit_queue_depth", ()) in after
    crl_next = [v for (n, _), v in after.items() if n == "siogw_crl_next_update_seconds"]
    assert crl_next and all(v > 0 for v in crl_next)


@pytest.mark.slow
def test_metrics_are_off_by_default_and_never_on_the_grpc_port(
    world: demo.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIOGW_METRICS_PORT", raising=False)
    monkeypatch.setenv("SIOGW_WORKERS", "2")
    with serve(world, "gw-nometrics.log") as gw:
        # the gRPC port speaks no HTTP/1.1 metrics
        with pytest.raises(Exception):  # any failure: TLS, HTTP/2, reset
            urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/metrics", timeout=5)
        assert not (world.home / "run" / "metrics").exists() or not any(
            (world.home / "run" / "metrics").iterdir())


def test_metrics_settings_are_checked(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).metrics.port == 0  # off by default
    cfg = load_config(tmp_path, env={"SIOGW_METRICS_PORT": "9464"})
    assert (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 9464)
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        load_config(tmp_path, env={"SIOGW_METRICS_PORT": "70000"})
    with pytest.raises(ConfigError, match=r"logging\.format"):
        load_config(tmp_path, env={"SIOGW_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match=r"logging\.level"):
        load_config(tmp_path, env={"SIOGW_LOG_LEVEL": "LOUD"})


def test_one_process_serves_its_own_registry(gateway: Any) -> None:
    """``siogw serve`` without workers: /metrics from this process's registry, the gauges
    read from the gateway when scraped."""
    from server.metrics import start_metrics

    config = dataclasses.replace(gateway.gateway.config,
                                 metrics=MetricsSettings(port=free_port()))
    server = start_metrics(config, gateway.gateway)
    assert server is not None
    try:
        before = scrape(server.port)
        gateway.send_query("alice")
        after = scrape(server.port)
    finally:
        server.close()
    ok = ("siogw_grpc_calls_total",)
    assert (value(after, *ok, service=QUERY[0], method=QUERY[1], code="OK")
            - value(before, *ok, service=QUERY[0], method=QUERY[1], code="OK")) == 1
    assert (value(after, "siogw_replay_claims_total", outcome="claimed")
            - value(before, "siogw_replay_claims_total", outcome="claimed")) == 1
    assert value(after, "siogw_sessions_live") >= 1
    assert value(after, "siogw_audit_log_state", state="ok") == 1
    assert [v for (n, _), v in after.items() if n == "siogw_crl_age_seconds"]
    # off: no listener at all
    assert start_metrics(gateway.gateway.config, gateway.gateway) is None


@pytest.mark.parametrize(("state", "expected"), [("CLOSED", 0), ("HALF_OPEN", 1), ("OPEN", 2)])
def test_breaker_states_map_to_their_gauge_values(state: str, expected: int) -> None:
    from prometheus_client import REGISTRY

    from server.metrics import breaker_state
    from server.resources.remote import BreakerState

    breaker_state(97, BreakerState[state])
    assert REGISTRY.get_sample_value("siogw_upstream_breaker_state",
                                     {"resource": "97"}) == expected
