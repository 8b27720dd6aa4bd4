"""``server.ops_wiring``: the operations domain of a gateway built by
``server.assembly.build_gateway`` (real store, AuditLog, audit index; no server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from audit import AuditLog, AuditRecord
from server.assembly import build_gateway
from server.config import load_config
from server.ops import Actor, QueryFilter, Role
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
    gw = build_gateway(config, signer=signer, audit_log=log, dispatcher=object())
    yield gw
    gw.ops_wiring.close()
    log.close()
    gw.store.close()


def _query(n: int, task: str = "T-1") -> AuditRecord:
    return AuditRecord(actor="anna", event="query", outcome="success",
                       details={"resource": 1, "basis": "financial_monitoring", "task": task,
                                "request_id": f"q{n}"})


def test_the_sink_feeds_the_rules(gateway: Any) -> None:
    ops = gateway.ops
    assert ops is not None and gateway.ops_wiring.ops is ops
    sink = gateway.audit

    async def send() -> None:
        await sink.record(_query(1))
        await sink.record(_query(2, task=""))  # no task reference: an alert

    asyncio.run(send())
    gateway.ops_wiring.settle()
    alerts = ops.rules.alerts(Actor("cora", Role.CONTROLLER))
    assert [(a.rule, a.user_id) for a in alerts] == [("query_without_task", "anna")]
    assert alerts[0].record_seq is not None


def test_catch_up_indexes_only_new_records(gateway: Any) -> None:
    ops = gateway.ops
    wiring = gateway.ops_wiring
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


def test_catch_up_heals_gaps_below_the_top(gateway: Any) -> None:
    """Issue 14, finding 7: a seq missing below the index's top is found and added."""
    from sqlalchemy import delete

    wiring = gateway.ops_wiring
    log = gateway.audit_log
    for n in range(5):
        log.append_sync(_query(n))
    assert wiring.catch_up() == 5
    table = wiring.index.table
    with wiring.index.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.seq.in_([1, 3])))
    wiring._last_seq = None  # a restart (or another process) over the same index
    assert wiring.catch_up() == 2
    assert wiring.index.missing_seqs() == [] and wiring.index.count() == 5


def test_catch_up_reads_only_the_durable_part_of_the_live_segment(gateway: Any) -> None:
    """Issue 14, finding 7: bytes of the live segment past its last durable record (a
    write not yet fsync'd, or one recovery would cut) are never indexed, even when they
    hold a whole, well-formed frame."""
    import os

    from audit.archive import LIVE_DIR, segment_name
    from audit.record import encode_record
    from audit.segments import encode_frame
    from siogw_api.timeutil import now_utc

    wiring = gateway.ops_wiring
    log = gateway.audit_log
    for n in range(3):
        log.append_sync(_query(n))
    number, length = log.durable_extent()
    live = log.root / LIVE_DIR / segment_name(number)
    assert live.stat().st_size == length
    # what a write in progress leaves: a whole frame (seq 3), then a torn one
    ghost = encode_frame(encode_record(_query(99), 3, now_utc()))
    with open(live, "ab") as fh:
        fh.write(ghost + ghost[: len(ghost) // 2])
    assert wiring.catch_up() == 3
    table = wiring.index.table
    with wiring.index.engine.connect() as conn:
        rows = conn.execute(select(table.c.seq, table.c.request_id).order_by(table.c.seq)).all()
    assert [tuple(r) for r in rows] == [(0, "q0"), (1, "q1"), (2, "q2")]
    # the write "fails" and is cut; the log's next record takes seq 3 and is indexed
    os.truncate(live, length)
    log.append_sync(_query(3))
    assert log.durable_extent()[0] == number and log.durable_extent()[1] > length
    assert wiring.catch_up() == 1
    with wiring.index.engine.connect() as conn:
        assert conn.execute(select(table.c.request_id).where(table.c.seq == 3)).scalar() == "q3"


def test_catch_up_reads_only_what_was_appended_since(gateway: Any) -> None:
    """Each catch-up reads the live segment from where the last one stopped (a replay's
    receipt lookup catches up: it must not read a 64 MiB segment again each time). Shown
    by spoiling an indexed frame's bytes: a catch-up that read the segment again from
    its start would stop at that frame and index nothing new."""
    from audit.archive import LIVE_DIR, segment_name
    from audit.segments import MAGIC

    wiring = gateway.ops_wiring
    log = gateway.audit_log
    for n in range(3):
        log.append_sync(_query(n))
    assert wiring.catch_up() == 3
    number, length = log.durable_extent()
    live = log.root / LIVE_DIR / segment_name(number)
    original = live.read_bytes()
    assert len(original) == length
    with open(live, "r+b") as fh:  # inside the first record's body (its CRC fails)
        fh.seek(len(MAGIC) + 8 + 4)
        fh.write(b"\xff" * 8)
    try:
        for n in range(3, 5):
            log.append_sync(_query(n))
        assert wiring.catch_up() == 2
    finally:
        with open(live, "r+b") as fh:
            fh.write(original)
    # a new wiring (or a restart) reads the whole segment again: nothing is missing
    wiring._last_seq = None
    assert wiring.catch_up() == 0
    assert wiring.index.missing_seqs() == [] and wiring.index.count() == 5


# --- the rules' windows survive a restart ---------------------------------------------------
SUBJECT = "850517300005"


def _open(tmp_path: Path) -> Any:
    """The gateway of ``tmp_path`` (same database and audit log on every call)."""
    ca_dir = tmp_path / "ca"
    ca = (CertificateAuthority.open(ca_dir) if ca_dir.exists()
          else CertificateAuthority.init(ca_dir, "CN=Wiring Root"))
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={"trust": {"anchors": ["root.pem"]}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/wiring")
    return build_gateway(config, signer=signer, audit_log=log, dispatcher=object())


def _shut(gw: Any) -> None:
    gw.ops_wiring.close()
    gw.audit_log.close()
    gw.store.close()


def _about_subject(n: int) -> AuditRecord:
    return AuditRecord(actor="anna", event="query", outcome="success",
                       details={"resource": 1, "basis": "financial_monitoring", "task": "T-1",
                                "request_id": f"b{n}", "subject": SUBJECT})


def _burst_alerts(gw: Any) -> list[Any]:
    gw.ops_wiring.settle()
    return [a for a in gw.ops.rules.alerts(Actor("cora", Role.CONTROLLER))
            if a.rule == "subject_burst"]


def _send(gw: Any, numbers: range) -> None:
    async def send() -> None:
        for n in numbers:
            await gw.audit.record(_about_subject(n))

    asyncio.run(send())


def test_a_burst_spanning_a_restart_is_seen(tmp_path: Path) -> None:
    gw = _open(tmp_path)
    try:
        _send(gw, range(9))  # one short of the burst threshold (10 within an hour)
        assert _burst_alerts(gw) == []
    finally:
        _shut(gw)
    gw = _open(tmp_path)  # restart: the windows are rebuilt from the log
    try:
        assert _burst_alerts(gw) == []  # replay alone raises nothing
        _send(gw, range(9, 10))
        [alert] = _burst_alerts(gw)
        assert alert.user_id == "anna" and alert.details["count"] == 10
    finally:
        _shut(gw)


def test_replay_raises_no_alert_twice_and_one_a_crash_missed(tmp_path: Path) -> None:
    gw = _open(tmp_path)
    try:
        _send(gw, range(10))
        assert len(_burst_alerts(gw)) == 1
    finally:
        _shut(gw)
    gw = _open(tmp_path)
    try:
        assert len(_burst_alerts(gw)) == 1  # the replay saw the burst but did not re-raise
        _send(gw, range(10, 11))  # the window restarted at the alert: one query counts 1
        assert len(_burst_alerts(gw)) == 1
        # A crash between a durable record and its rules: records appended straight to
        # the log, past the sink, are what a restart finds without an alert.
        for n in range(11, 21):
            gw.audit_log.append_sync(_about_subject(n))
        assert len(_burst_alerts(gw)) == 1
    finally:
        _shut(gw)
    gw = _open(tmp_path)
    try:
        alerts = _burst_alerts(gw)
        assert len(alerts) == 2 and alerts[1].record_seq is not None
    finally:
        _shut(gw)
