"""Issue 15, point 4: Reports rows that serve control (§21) and supervision (§22).

Rows carry the justification, subject, parameters, unit, resource name, status code,
refusal reason and result summary of the audit record; old records (written before the
query path recorded them) give empty cells; new filters (unit, subject, reason); the
index built by an older release is rebuilt from the log; the streamed CSV export is
recorded before its first row and is safe against formula injection (a property test).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.index import AuditIndex
from audit.record import LoggedRecord
from server.ops import Operations, PermissionDenied, QueryFilter
from server.ops.reports import (
    CSV_COLUMNS,
    FORMULA_STARTS,
    QueryRecord,
    _csv_row,
    csv_cell,
    csv_writer,
)
from tests.server.ops.conftest import CONTROLLER, OPERATOR, ListRecorder

T0 = _dt.datetime(2026, 11, 2, 4, 0, tzinfo=_dt.UTC)
IIN = "900101300017"


def logged(seq: int, actor: str, event: str, outcome: str,
           details: dict[str, Any]) -> tuple[bytes, LoggedRecord]:
    return (f"body{seq}".encode(), LoggedRecord(
        seq=seq, time=T0 + _dt.timedelta(minutes=seq), actor=actor, cert_fingerprint=None,
        event=event, outcome=outcome, details=details, payload=None))


def answered(seq: int, actor: str = "alice", **extra: Any) -> tuple[bytes, LoggedRecord]:
    """A query record as server/query.py writes it since issue 15."""
    return logged(seq, actor, "query", "success", {
        "request_id": f"r{seq}", "resource": 1, "basis": "financial_monitoring",
        "task": "case-1", "subject": IIN, "justification": "counterparty check",
        "parameters": {"iin": IIN}, "unit": "Analytics", "truncated": False,
        "result_summary": "3 field(s)", **extra})


def refused(seq: int, actor: str = "bob", **extra: Any) -> tuple[bytes, LoggedRecord]:
    """A refusal record as the interceptor writes it for a refused query."""
    return logged(seq, actor, "refusal", "refused", {
        "method": "/siogw.v1.QueryService/Query", "code": "PERMISSION_DENIED",
        "reason": "BASIS_NOT_ALLOWED", "message": "basis 'x' is not allowed for your role",
        "request_id": f"r{seq}", "resource": 11, "basis": "x", "task": "=HYPERLINK(\"http://x\")",
        "justification": "why not", "unit": "Compliance", **extra})


def old(seq: int) -> tuple[bytes, LoggedRecord]:
    """A query record of a release before issue 15: no subject, justification, unit."""
    return logged(seq, "carol", "query", "success", {
        "request_id": f"r{seq}", "resource": 5, "basis": "financial_monitoring",
        "task": "case-9", "result_sha256": "00" * 32})


@pytest.fixture
def filled(audit_index: AuditIndex) -> AuditIndex:
    audit_index.add([answered(0), refused(1), old(2), answered(3, "dave", unit="Legal",
                                                              subject="123456789012")])
    return audit_index


def test_rows_carry_what_control_needs(ops: Operations, filled: AuditIndex) -> None:
    rows = {r.seq: r for r in ops.reports.queries(CONTROLLER).rows}
    ok = rows[0]
    assert (ok.justification, ok.subject, ok.unit) == ("counterparty check", IIN, "Analytics")
    assert ok.parameters == {"iin": IIN} and ok.status_code == "OK" and ok.reason is None
    assert ok.resource_number == 1 and ok.resource_name  # from the catalogue
    assert ok.result_summary == "3 field(s)" and ok.truncated is False
    assert ok.leaf_hash and len(ok.leaf_hash) == 64
    no = rows[1]
    assert (no.status_code, no.reason) == ("PERMISSION_DENIED", "BASIS_NOT_ALLOWED")
    assert no.message == "basis 'x' is not allowed for your role"
    assert no.justification == "why not" and no.resource_name != ok.resource_name
    # An old record: what it never held is empty, what it held is there.
    was = rows[2]
    assert (was.justification, was.subject, was.unit, was.parameters) == (None,) * 4
    assert was.status_code == "OK" and was.task == "case-9"


def test_filters_by_unit_subject_reason(ops: Operations, filled: AuditIndex) -> None:
    def seqs(**kw: Any) -> list[int]:
        return [r.seq for r in ops.reports.queries(CONTROLLER, QueryFilter(**kw)).rows]

    assert seqs(unit="Analytics") == [0]
    assert seqs(unit="Legal") == [3]
    assert seqs(subject=IIN) == [0]
    assert seqs(reason="BASIS_NOT_ALLOWED") == [1]
    assert seqs(reason="BASIS_NOT_ALLOWED", unit="Analytics") == []
    assert seqs(subject="123456789012", user_ids=("dave",)) == [3]


def test_index_of_an_older_release_is_rebuilt(db_url: str) -> None:
    """A table without the new columns is dropped by create(); the catch-up refills it
    from the log (tests/server/test_ops_wiring.py covers the catch-up itself)."""
    engine = sa.create_engine(db_url)
    md = sa.MetaData()
    sa.Table("audit_records", md, sa.Column("seq", sa.BigInteger, primary_key=True),
             sa.Column("time", sa.DateTime(timezone=True)), sa.Column("actor", sa.String(256)),
             sa.Column("event", sa.String(64)), sa.Column("outcome", sa.String(32)),
             sa.Column("leaf_hash", sa.String(64)))
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["audit_records"].insert().values(
            seq=0, time=T0, actor="x", event="query", outcome="success", leaf_hash="00"))
    engine.dispose()

    index = AuditIndex(db_url)
    try:
        index.create()
        assert index.count() == 0  # dropped: the old rows are gone, the columns are there
        index.add([answered(0)])
        (row,) = index.search()
        assert row.justification == "counterparty check" and row.subject == IIN
    finally:
        index.dispose()


def test_stream_export_is_recorded_first_and_bounded(
    ops: Operations, filled: AuditIndex, recorder: ListRecorder
) -> None:
    chunks = ops.reports.export_csv_stream(CONTROLLER, chunk_rows=1)
    # Recorded before any row was read: the record names the rows disclosed (upto_seq).
    (read,) = recorder.of("report.read")
    assert read["details"]["export"] == "csv-stream" and read["details"]["upto_seq"] == 3
    filled.add([answered(4)])  # after the start: not in this export
    parts = list(chunks)
    assert [n for _t, n in parts] == [1, 1, 1, 1]
    rows = list(csv.reader(io.StringIO("".join(t for t, _n in parts), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    by_name = dict(zip(CSV_COLUMNS, rows[2], strict=True))
    assert by_name["task"] == "'=HYPERLINK(\"http://x\")"  # neutralised
    assert by_name["reason"] == "BASIS_NOT_ALLOWED" and by_name["status_code"] == (
        "PERMISSION_DENIED")
    assert json.loads(json.dumps(by_name))["justification"] == "why not"
    by_name = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (by_name["subject"], by_name["parameters"], by_name["unit"]) == (
        IIN, f"iin={IIN}", "Analytics")


def test_stream_export_refuses_other_roles_before_anything(
    ops: Operations, filled: AuditIndex, recorder: ListRecorder
) -> None:
    with pytest.raises(PermissionDenied):
        ops.reports.export_csv_stream(OPERATOR)
    assert recorder.of("report.read") == []


# --- formula injection: a property test ---------------------------------------------------
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_dangerous = st.sampled_from(FORMULA_STARTS).flatmap(lambda c: _text.map(lambda t: c + t))
_cell = st.one_of(_text, _dangerous)


@settings(max_examples=300, deadline=None)
@given(user=_cell, task=_cell, basis=_cell, justification=_cell, subject=_cell, unit=_cell,
       reason=_cell, message=_cell, summary=_cell, value=_cell)
def test_no_exported_cell_is_a_formula_and_all_round_trip(
    user: str, task: str, basis: str, justification: str, subject: str, unit: str,
    reason: str, message: str, summary: str, value: str,
) -> None:
    record = QueryRecord(
        seq=7, time=T0, user_id=user, event="query", resource="1", basis=basis, task=task,
        outcome="refused", request_id=task, unit=unit, subject=subject,
        justification=justification, parameters={"iin": value}, status_code="OK",
        reason=reason, message=message, result_summary=summary, truncated=True,
        leaf_hash="ab" * 32)
    out = io.StringIO()
    csv_writer(out).writerow(_csv_row(record))
    (cells,) = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert len(cells) == len(CSV_COLUMNS)
    for cell in cells:
        assert not cell.startswith(FORMULA_STARTS), cell
    got = dict(zip(CSV_COLUMNS, cells, strict=True))
    originals = {"user": user, "task": task, "basis": basis, "justification": justification,
                 "subject": subject, "unit": unit, "reason": reason, "message": message,
                 "result_summary": summary, "request_id": task, "parameters": f"iin={value}"}
    for name, original in originals.items():
        expected = "'" + original if original.startswith(FORMULA_STARTS) else original
        assert got[name] == expected, name
        assert csv_cell(original) == expected


def test_csv_cell_examples() -> None:
    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    for start in ("+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(start) == "'" + start
    assert csv_cell("900101300017") == "900101300017"
    assert csv_cell("") == ""



def test_a_nul_character_does_not_stop_the_index(ops: Operations,
                                                 audit_index: AuditIndex) -> None:
    """A signed query may carry U+0000 in its task or justification (the log keeps it);
    the index, whose databases refuse it (audit.sqlguard), shows U+FFFD instead of
    failing every later catch-up."""
    audit_index.add([answered(0, task="a\x00b", justification="why\x00",
                              parameters={"iin\x00": "1\x00"}),
                     refused(1, message="m\x00")])
    rows = {r.seq: r for r in ops.reports.queries(CONTROLLER).rows}
    assert rows[0].task == "a\ufffdb" and rows[0].justification == "why\ufffd"
    assert rows[0].parameters == {"iin\ufffd": "1\ufffd"}
    assert rows[1].message == "m\ufffd"
