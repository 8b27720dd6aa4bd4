"""``server.ops_wiring``: attaching the operations domain to a gateway built by
``server.app.build_gateway`` (real store, AuditLog, audit index; no server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from audit import AuditLog, AuditRecord
from server.app import build_gateway
from server.auditsink import AuditLogSink
from server.config import load_config
from server.ops import Actor, QueryFilter, Role
from server.ops_wiring import attach_operations, wiring_of
from signing.ca import CertificateAuthority
from signing.software import SoftwareSigner, generate_software_key


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Wiring Root")
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={"trust": {"anchors": ["root.pem"]}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/wiring")
    gw = build_gateway(config, signer=signer, audit=AuditLogSink(log), audit_log=log,
                       dispatcher=object())
    yield gw
    wiring_of(gw).close()
    log.close()
    gw.store.close()


def _query(n: int, task: str = "T-1") -> AuditRecord:
    return AuditRecord(actor="anna", event="query", outcome="success",
                       details={"resource": 1, "basis": "financial_monitoring", "task": task,
                                "request_id": f"q{n}"})


def test_attach_is_idempotent_and_the_sink_feeds_the_rules(gateway: Any) -> None:
    ops = attach_operations(gateway)
    assert attach_operations(gateway) is ops and gateway.ops is ops
    sink = gateway.audit

    async def send() -> None:
        await sink.record(_query(1))
        await sink.record(_query(2, task=""))  # no task reference: an alert

    asyncio.run(send())
    wiring_of(gateway).settle()
    alerts = ops.rules.alerts(Actor("cora", Role.CONTROLLER))
    assert [(a.rule, a.user_id) for a in alerts] == [("query_without_task", "anna")]
    assert alerts[0].record_seq is not None


def test_catch_up_indexes_only_new_records(gateway: Any) -> None:
    ops = attach_operations(gateway)
    wiring = wiring_of(gateway)
    log = gateway.audit_log
    for n in range(3):
        log.append_sync(_query(n))
    assert wiring.catch_up() == 3
    assert wiring.catch_up() == 0
    log.seal_now()  # a sealed segment and a new live one
    for n in range(3, 5):
        log.append_sync(_query(n))
    assert wiring.catch_up() == 2
    page = ops.reports.queries(Actor("cora", Role.CONTROLLER), QueryFilter(user_ids=("anna",)))
    assert [r.request_id for r in page.rows] == [f"q{n}" for n in range(5)]
    # a second wiring over the same index (another process) starts from the index's top
    wiring._last_seq = None
    assert wiring.catch_up() == 1  # only the report.read record written just now
