"""Issue 5's acceptance story at the library level, over the real audit log and index.

application -> refusal (signature verifies) -> corrected application -> registration
(enrolled into the gateway's real ``server.store.Store``) -> login (a store session) ->
queries recorded in the WORM log -> transfer edit filed late (flagged) -> block (the
store ends the open session, so its next call fails) -> the controller's report shows
it all -> a prosecutor inside and outside the resolution's scope (allowed / denied,
both in the audit log).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit import AuditLog, AuditRecord, verify_archive
from audit.archive import iter_archive_records
from audit.index import AuditIndex
from server.ops import (
    Actor,
    AuditIndexQueries,
    BlockKind,
    Operations,
    PermissionDenied,
    QueryFilter,
    Role,
    audit_log_recorder,
    verify_refusal,
)
from server.ops.documents import fingerprint
from server.ops.gateway import observe_audit_record
from server.store import Store
from server.store.users import USER_BLOCKED
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore
from siogw_api.timeutil import now_utc
from tests.server.ops.conftest import Clock
from tests.server.ops.helpers import application, resolution, transfer

OLGA = Actor("olga", Role.OPERATOR)
CARL = Actor("carl", Role.CONTROLLER)
PETR = Actor("petr", Role.PROSECUTOR)


@pytest.fixture
def world(db_url: str, tmp_path: Path, trust: TrustStore, clock: Clock,
          engine: sa.Engine) -> Iterator[dict[str, Any]]:
    log = AuditLog.open(tmp_path / "audit", SoftwareSigner(generate_software_key(
        "ecdsa-p256-sha256")), "sio-gateway/ops-e2e")
    index = AuditIndex(db_url, table_prefix="e2e_")
    index.create()
    store = Store(db_url).open()
    ops = Operations.open(engine, record=audit_log_recorder(log), trust=trust,
                          index=AuditIndexQueries(index), clock=clock)
    yield {"log": log, "index": index, "store": store, "ops": ops, "dir": tmp_path / "audit"}
    log.close()
    index.drop()
    index.dispose()
    store.drop_all()
    store.close()


def test_acceptance_story(world: dict[str, Any], people: Any, trust: TrustStore,
                          clock: Clock) -> None:
    ops: Operations = world["ops"]
    store: Store = world["store"]
    log: AuditLog = world["log"]
    index: AuditIndex = world["index"]
    started = now_utc()

    # The gateway's store and the domain share the users, certificates and windows.
    olga_p, petr_p, anna = people("Olga operator"), people("Petr prosecutor"), people("Anna")
    ops.lifecycle.import_user(OLGA, user_id="olga", iin=olga_p.iin, full_name="Olga",
                              role="operator", certificate_der=olga_p.cert_der)
    ops.lifecycle.import_user(OLGA, user_id="carl", iin="850517300005", full_name="Carl",
                              role="controller")
    ops.lifecycle.import_user(OLGA, user_id="petr", iin=petr_p.iin, full_name="Petr",
                              role="prosecutor", certificate_der=petr_p.cert_der)

    # 1. Application with an empty post -> refused with a signed reason.
    first = ops.applications.file(application(anna, post=""))
    ops.applications.refuse(OLGA, first.id, "post is missing", olga_p.signer)
    refusal = verify_refusal(ops.applications.refusal_for(first.id, fingerprint(anna.cert_der)),
                             trust)
    assert refusal.reason == "post is missing" and "Olga operator" in refusal.signer_subject

    # 2. Corrected application -> registration -> enrolled in the gateway store.
    second = ops.applications.file(application(anna, corrects=first.id))
    enrolment = ops.applications.register(OLGA, second.id, user_id="anna")
    assert store.require_user("anna").active
    assert ops.applications.overdue(OLGA, clock.now + _dt.timedelta(days=2)) == []

    # 3. Login (a session in the store) and queries, recorded in the WORM log.
    session = "e2e-session-hash"
    store.create_session(token_hash=session, user_id="anna",
                         cert_fingerprint=fingerprint(anna.cert_der), factor="sms",
                         expires_at=now_utc() + _dt.timedelta(hours=8))
    fp = fingerprint(enrolment.certificate_der)
    stream = [
        ("query", "success", {"resource": 1, "basis": "financial_monitoring", "task": "case-7",
                              "request_id": "q1", "subject": "900101300001"}),
        ("query", "success", {"resource": 25, "basis": "financial_monitoring", "task": "case-7",
                              "request_id": "q2", "subject": "900101300001"}),
        ("refusal", "refused", {"resource": 3, "basis": "financial_monitoring", "task": "",
                                "request_id": "q3", "reason": "MISSING_FIELD"}),
    ]
    alerts = []
    for event, outcome, details in stream:
        record = AuditRecord(actor="anna", event=event, outcome=outcome, cert_fingerprint=fp,
                             details=details)
        log.append_sync(record)
        alerts += observe_audit_record(ops, record)
    assert [a.rule for a in alerts] == ["query_without_task"]

    # 4. Transfer edit filed 30 hours after the order -> flagged late, applied.
    order_signed = clock.now
    clock.advance(hours=30)
    edit = ops.lifecycle.file_transfer(transfer(anna, "anna", order_signed))
    assert edit.late
    ops.lifecycle.apply_transfer(OLGA, edit.id)

    # 5. The controller blocks on the violation: the open session ends at once.
    ops.lifecycle.block(CARL, "anna", BlockKind.VIOLATION, "query without a task reference")
    assert ops.lifecycle.is_blocked("anna")
    assert store.require_user("anna").status == USER_BLOCKED
    ended = store.get_session(session)
    assert ended is not None and ended.ended_at is not None  # its next call fails
    [notice] = ops.lifecycle.outbox(CARL)
    assert notice.user_id == "anna" and notice.kind == "violation_block"
    # The gateway refuses and records the next call.
    log.append_sync(AuditRecord(actor="anna", event="refusal", outcome="refused",
                                cert_fingerprint=fp,
                                details={"resource": 1, "basis": "financial_monitoring",
                                         "task": "case-7", "request_id": "q4",
                                         "reason": "USER_BLOCKED"}))

    # 6. The controller's report shows it all.
    index.rebuild(world["dir"])
    page = ops.reports.queries(CARL, QueryFilter(user_ids=("anna",)))
    assert [(r.request_id, r.outcome) for r in page.rows] == [
        ("q1", "success"), ("q2", "success"), ("q3", "refused"), ("q4", "refused")]
    out = io.StringIO()
    assert ops.reports.export_csv(CARL, out, QueryFilter(outcome="refused")) == 2
    assert [row[8] for row in csv.reader(io.StringIO(out.getvalue()))][1:] == ["q3", "q4"]
    [alert] = ops.rules.alerts(CARL)
    assert alert.user_id == "anna"
    assert [t.id for t in ops.lifecycle.transfers(OLGA, late_only=True)] == [edit.id]
    ops.reports.record_review(CARL, started - _dt.timedelta(days=1), clock.now, "anna blocked")
    assert ops.reports.overdue_reviews(CARL, clock.now) == []

    # 7. The prosecutor: inside the resolution's scope allowed, outside denied.
    res = ops.prosecutor.register_resolution(PETR, resolution(
        petr_p.signer, "17-03/2026", ["anna"], started - _dt.timedelta(hours=1),
        started + _dt.timedelta(days=2)))
    inside = ops.prosecutor.read_trail(PETR, res.id, user_ids=["anna"])
    assert [r.request_id for r in inside.rows] == ["q1", "q2", "q3", "q4"]
    with pytest.raises(PermissionDenied):
        ops.prosecutor.read_trail(PETR, res.id, user_ids=["carl"])
    with pytest.raises(PermissionDenied):  # R12: the operator reads no one's queries
        ops.reports.queries(OLGA)

    # Everything is in the WORM log, which verifies.
    records = [rec for _, rec in iter_archive_records(world["dir"])]
    events = [(r.event, r.outcome) for r in records]
    for expected in [("ops.application.filed", "success"), ("ops.application.refused", "success"),
                     ("ops.application.registered", "success"),
                     ("ops.transfer.filed", "success"), ("ops.user.blocked", "success"),
                     ("ops.alert.raised", "success"), ("report.read", "success"),
                     ("ops.review.recorded", "success"), ("ops.resolution.registered", "success"),
                     ("prosecutor.read", "success"), ("prosecutor.read", "refused")]:
        assert expected in events, expected
    late = [r for r in records if r.event == "ops.transfer.filed"]
    assert late[0].details["late"] is True
    log.seal_now()
    report = verify_archive(world["dir"], log.trusted_keys())
    assert report.records == len(records)
