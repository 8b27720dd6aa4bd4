"""R16: resolutions signed by the prosecutor; scoped trail reads, every read audited."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

import pytest

from audit.index import AuditIndex
from server.ops import Actor, Duplicate, InvalidDocument, Operations, PermissionDenied, Role
from server.ops.errors import SignerMismatch
from tests.server.ops.conftest import CONTROLLER, OPERATOR, ListRecorder
from tests.server.ops.helpers import resolution
from tests.server.ops.test_reports import T0, rec

START, END = T0 - _dt.timedelta(days=1), T0 + _dt.timedelta(days=20)


@pytest.fixture
def petr(ops: Operations, people: Any) -> tuple[Actor, Any]:
    person = people("Petr prosecutor")
    ops.lifecycle.import_user(OPERATOR, user_id="petr", iin=person.iin, full_name=person.name,
                              role="prosecutor", certificate_der=person.cert_der)
    return Actor("petr", Role.PROSECUTOR), person


def test_register_and_read_inside_scope(ops: Operations, petr: Any, audit_index: AuditIndex,
                                        recorder: ListRecorder) -> None:
    actor, person = petr
    audit_index.add([rec(0, "alice"), rec(1, "bob"), rec(2, "alice", minutes=60 * 24 * 30)])
    res = ops.prosecutor.register_resolution(
        actor, resolution(person.signer, "P-1/2026", ["alice"], START, END))
    assert res.user_ids == ("alice",) and res.prosecutor_id == "petr"
    assert ops.prosecutor.resolutions(actor) == [res]
    page = ops.prosecutor.read_trail(actor, res.id)
    assert [r.seq for r in page.rows] == [0]  # bob is out of scope, seq 2 out of period
    page = ops.prosecutor.read_trail(actor, res.id, user_ids=["alice"],
                                     since=T0, until=T0 + _dt.timedelta(hours=1))
    assert [r.seq for r in page.rows] == [0]
    reads = recorder.of("prosecutor.read")
    assert [e["outcome"] for e in reads] == ["success", "success"]
    assert reads[0]["details"]["number"] == "P-1/2026" and reads[0]["details"]["rows"] == 1
    with pytest.raises(Duplicate):
        ops.prosecutor.register_resolution(
            actor, resolution(person.signer, "P-1/2026", ["bob"], START, END))


def test_reads_outside_scope_are_denied_and_audited(
    ops: Operations, petr: Any, people: Any, recorder: ListRecorder
) -> None:
    actor, person = petr
    res = ops.prosecutor.register_resolution(
        actor, resolution(person.signer, "P-2", ["alice"], START, END))
    attempts: list[Callable[[], object]] = [
        lambda: ops.prosecutor.read_trail(actor, res.id, user_ids=["bob"]),
        lambda: ops.prosecutor.read_trail(actor, res.id, user_ids=["alice", "bob"]),
        lambda: ops.prosecutor.read_trail(actor, res.id, since=START - _dt.timedelta(seconds=1)),
        lambda: ops.prosecutor.read_trail(actor, res.id, until=END + _dt.timedelta(days=1)),
        lambda: ops.prosecutor.read_trail(actor, "no-such-resolution"),
        lambda: ops.prosecutor.read_trail(Actor("pavel", Role.PROSECUTOR), res.id),
        lambda: ops.prosecutor.read_trail(CONTROLLER, res.id),
        lambda: ops.prosecutor.read_trail(OPERATOR, res.id),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    reads = recorder.of("prosecutor.read")
    assert len(reads) == len(attempts)
    assert all(e["outcome"] == "refused" and e["details"]["reason"] for e in reads)
    assert reads[0]["details"]["users"] == ["bob"]
    assert reads[-1]["actor"] == OPERATOR.user_id


def test_resolution_signatures(ops: Operations, petr: Any, people: Any) -> None:
    actor, person = petr
    other = people("Not the prosecutor")
    with pytest.raises(SignerMismatch):
        ops.prosecutor.register_resolution(
            actor, resolution(other.signer, "P-3", ["alice"], START, END))
    with pytest.raises(SignerMismatch):  # no registered certificate at all
        ops.prosecutor.register_resolution(
            Actor("pavel", Role.PROSECUTOR),
            resolution(other.signer, "P-3", ["alice"], START, END))
    with pytest.raises(InvalidDocument):
        ops.prosecutor.register_resolution(
            actor, resolution(person.signer, "P-4", [], START, END))
    with pytest.raises(InvalidDocument):
        ops.prosecutor.register_resolution(
            actor, resolution(person.signer, "P-5", ["alice"], END, START))
    with pytest.raises(InvalidDocument):
        ops.prosecutor.register_resolution(
            actor, resolution(person.signer, "P-6", ["alice"], START, END, date="20.11.2026"))
    with pytest.raises(PermissionDenied):
        ops.prosecutor.register_resolution(
            CONTROLLER, resolution(person.signer, "P-7", ["alice"], START, END))


def test_resolution_signed_with_the_session_certificate(ops: Operations, people: Any) -> None:
    """A prosecutor the ops tables do not know: the gateway passes the session's certificate."""
    pavel, eve = people("Pavel"), people("Eve")
    actor = Actor("pavel", Role.PROSECUTOR)
    doc = resolution(pavel.signer, "P-9", ["alice"], START, END)
    res = ops.prosecutor.register_resolution(actor, doc, signer_certificates=[pavel.cert])
    assert res.prosecutor_id == "pavel"
    with pytest.raises(SignerMismatch):
        ops.prosecutor.register_resolution(
            actor, resolution(eve.signer, "P-10", ["alice"], START, END),
            signer_certificates=[pavel.cert])
