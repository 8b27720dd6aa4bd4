"""R15: Reports over the audit index -- filters, keyset paging, CSV, reviews, overdue."""

from __future__ import annotations

import csv
import datetime as _dt
import io
from typing import Any

import pytest

from audit.index import AuditIndex
from audit.record import LoggedRecord
from server.ops import Operations, PermissionDenied, QueryFilter
from server.ops.reports import previous_month_start
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_zone, ensure_utc
from tests.server.ops.conftest import CONTROLLER, OPERATOR, PROSECUTOR, Clock, ListRecorder

T0 = _dt.datetime(2026, 11, 2, 4, 0, tzinfo=_dt.UTC)


def rec(seq: int, actor: str, *, event: str = "query", outcome: str = "success",
        resource: Any = 1, basis: str = "financial_monitoring", task: str = "case-1",
        minutes: int = 0) -> tuple[bytes, LoggedRecord]:
    details: dict[str, Any] = {"request_id": f"r{seq}"}
    if resource is not None:
        details.update(resource=resource, basis=basis, task=task)
    return (f"body{seq}".encode(), LoggedRecord(
        seq=seq, time=T0 + _dt.timedelta(minutes=minutes or seq), actor=actor,
        cert_fingerprint=None, event=event, outcome=outcome, details=details, payload=None))


@pytest.fixture
def filled(audit_index: AuditIndex) -> AuditIndex:
    audit_index.add([
        rec(0, "alice"),
        rec(1, "alice", resource=11, task="case-2"),
        rec(2, "bob", resource=5),
        rec(3, "bob", event="refusal", outcome="refused", resource=5, task=""),
        rec(4, "bob", event="login", resource=None),           # not a query
        rec(5, "bob", event="refusal", outcome="refused", resource=None),  # not a query attempt
        rec(6, "alice", minutes=60 * 24 * 40),                 # in December
        rec(7, "carol", basis="other"),
    ])
    return audit_index


def test_filters(ops: Operations, filled: AuditIndex, recorder: ListRecorder) -> None:
    def seqs(**kw: Any) -> list[int]:
        return [r.seq for r in ops.reports.queries(CONTROLLER, QueryFilter(**kw)).rows]

    assert seqs() == [0, 1, 2, 3, 6, 7]
    assert seqs(user_ids=("alice",)) == [0, 1, 6]
    assert seqs(user_ids=("alice", "carol")) == [0, 1, 6, 7]
    assert seqs(resource="5") == [2, 3]
    assert seqs(outcome="refused") == [3]
    assert seqs(task="case-2") == [1]
    assert seqs(basis="other") == [7]
    assert seqs(since=T0 + _dt.timedelta(minutes=2), until=T0 + _dt.timedelta(days=1)) == [2, 3, 7]
    assert seqs(until=T0) == []
    reads = recorder.of("report.read")
    assert len(reads) == 9 and reads[1]["details"]["filter"] == {"users": ["alice"]}
    row = ops.reports.queries(CONTROLLER, QueryFilter(user_ids=("bob",))).rows[1]
    assert (row.event, row.outcome, row.task, row.request_id) == ("refusal", "refused", "", "r3")


def test_keyset_paging(ops: Operations, filled: AuditIndex) -> None:
    got: list[int] = []
    after = None
    pages = 0
    while True:
        page = ops.reports.queries(CONTROLLER, after_seq=after, limit=4)
        got.extend(r.seq for r in page.rows)
        pages += 1
        if page.next_after_seq is None:
            break
        after = page.next_after_seq
    assert got == [0, 1, 2, 3, 6, 7] and pages == 2
    with pytest.raises(InputError):
        ops.reports.queries(CONTROLLER, limit=0)


def test_csv_export(ops: Operations, filled: AuditIndex, recorder: ListRecorder) -> None:
    out = io.StringIO()
    n = ops.reports.export_csv(CONTROLLER, out, QueryFilter(user_ids=("bob",)))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert n == 2 and rows[0][:3] == ["seq", "time", "user"]
    assert [r[0] for r in rows[1:]] == ["2", "3"]
    assert rows[1][1] == "2026-11-02T09:02:00+05:00"  # Astana time
    assert rows[2][7] == "refused"
    assert recorder.of("report.read")[-1]["details"]["export"] == "csv"


def test_only_controllers_read_reports(ops: Operations, filled: AuditIndex,
                                       recorder: ListRecorder) -> None:
    for actor in (OPERATOR, PROSECUTOR):
        with pytest.raises(PermissionDenied):
            ops.reports.queries(actor)
        with pytest.raises(PermissionDenied):
            ops.reports.export_csv(actor, io.StringIO())
    assert recorder.of("report.read") == []


def _controller(ops: Operations, user_id: str) -> None:
    ops.lifecycle.import_user(OPERATOR, user_id=user_id, iin="850517300005", full_name=user_id,
                              role="controller")


def test_reviews_and_overdue_controllers(ops: Operations, clock: Clock,
                                         recorder: ListRecorder) -> None:
    from server.ops import Actor, Role

    for cid in ("c-ann", "c-ben", "c-cid"):
        _controller(ops, cid)
    ann, ben = Actor("c-ann", Role.CONTROLLER), Actor("c-ben", Role.CONTROLLER)
    clock.now = _dt.datetime(2026, 10, 10, 6, 0, tzinfo=_dt.UTC)
    ops.reports.record_review(ann, _dt.datetime(2026, 9, 1, tzinfo=_dt.UTC), clock.now, "ok")
    clock.now = _dt.datetime(2026, 9, 15, 6, 0, tzinfo=_dt.UTC)
    ops.reports.record_review(ben, _dt.datetime(2026, 8, 1, tzinfo=_dt.UTC), clock.now)
    nov = _dt.datetime(2026, 11, 22, tzinfo=_dt.UTC)
    # In November: a review in October is enough; September's is not; none at all is overdue.
    assert [r.controller_id for r in ops.reports.overdue_reviews(ann, nov)] == ["c-ben", "c-cid"]
    status = {r.controller_id: r for r in ops.reports.review_status(ann, nov)}
    assert status["c-ann"].last_review_at == _dt.datetime(2026, 10, 10, 6, tzinfo=_dt.UTC)
    assert status["c-cid"].last_review_at is None
    # On 1 December (Astana), October's review no longer counts.
    dec1 = ensure_utc(_dt.datetime(2026, 12, 1, 0, 30, tzinfo=astana_zone()))
    assert [r.controller_id for r in ops.reports.overdue_reviews(ann, dec1)] == [
        "c-ann", "c-ben", "c-cid"]
    assert len(ops.reports.reviews(ann)) == 2
    assert recorder.of("ops.review.recorded")[0]["details"]["period_start"].endswith("+05:00")
    with pytest.raises(InputError):
        ops.reports.record_review(ann, nov, nov)
    with pytest.raises(PermissionDenied):
        ops.reports.overdue_reviews(OPERATOR, nov)


def test_previous_month_start_is_astana_based() -> None:
    # 30 Nov 20:00 UTC is already 1 December in Astana.
    assert previous_month_start(_dt.datetime(2026, 11, 30, 20, tzinfo=_dt.UTC)) == (
        _dt.datetime(2026, 10, 31, 19, tzinfo=_dt.UTC))
    assert previous_month_start(_dt.datetime(2026, 1, 15, tzinfo=_dt.UTC)) == (
        _dt.datetime(2025, 11, 30, 19, tzinfo=_dt.UTC))


def test_index_failure_is_a_storage_error(ops: Operations, audit_index: AuditIndex,
                                          recorder: ListRecorder) -> None:
    from server.ops import OpsStorageError

    audit_index.drop()
    with pytest.raises(OpsStorageError):
        ops.reports.queries(CONTROLLER)
    assert recorder.of("report.read") == []
    audit_index.create()  # for the fixture's tear-down
