"""Issue 15, point 5 (part "rules"): the rules' remaining gaps in the operations domain.

§23 (the prosecutor's outbox), §8 (overdue transfer edits), §14 (the maintenance notice
period). SQLite and PostgreSQL (the ``ops`` fixture), real signatures.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from server.ops import NoticeTooShort, Operations, PermissionDenied
from server.store import Store
from tests.server.ops.conftest import (
    AGENCY,
    CONTROLLER,
    OPERATOR,
    PROSECUTOR,
    SECURITY,
    Clock,
    ListRecorder,
)
from tests.server.ops.helpers import transfer

H = _dt.timedelta(hours=1)


def _user(ops: Operations, person: Any, user_id: str) -> None:
    ops.lifecycle.import_user(OPERATOR, user_id=user_id, iin=person.iin, full_name=person.name,
                              role="agency_user", unit="Analytics", post="analyst",
                              basis="financial_monitoring", certificate_der=person.cert_der)


# --- §23: violations the operator found reach the prosecutor too --------------------------
def test_operator_violation_block_notifies_agency_and_prosecutor(
    ops: Operations, people: Any, recorder: ListRecorder
) -> None:
    _user(ops, people("Bob"), "bob")
    ops.lifecycle.block(OPERATOR, "bob", "violation", "queries outside the basis")
    [agency] = ops.lifecycle.outbox(CONTROLLER)
    [prosecutor] = ops.lifecycle.outbox(PROSECUTOR)
    assert (agency.user_id, agency.kind, agency.reason) == (
        "bob", "violation_block", "queries outside the basis")
    assert (prosecutor.user_id, prosecutor.kind, prosecutor.reason) == (
        "bob", "violation_block", "queries outside the basis")
    assert recorder.of("ops.user.blocked")[0]["details"]["notified"] == ["agency", "prosecutor"]
    # Each reads and marks its own copy: the prosecutor's read leaves the agency's unread.
    ops.lifecycle.mark_read(PROSECUTOR, prosecutor.id)
    assert ops.lifecycle.outbox(PROSECUTOR) == []
    assert [n.id for n in ops.lifecycle.outbox(CONTROLLER)] == [agency.id]
    assert recorder.of("ops.outbox.read")[0]["details"]["outbox"] == "ops_prosecutor_outbox"
    for nobody in (OPERATOR, SECURITY, AGENCY):
        with pytest.raises(PermissionDenied):
            ops.lifecycle.outbox(nobody)


def test_a_blocking_rule_notifies_the_prosecutor(ops: Operations, people: Any) -> None:
    _user(ops, people("Bob"), "bob")
    assert ops.lifecycle.block_by_rule("bob", "query_outside_basis", "violation: basis",
                                       alert_id=7)
    [notice] = ops.lifecycle.outbox(PROSECUTOR)
    assert (notice.user_id, notice.alert_id) == ("bob", 7)


def test_controller_and_other_blocks_stay_with_the_agency(ops: Operations, people: Any) -> None:
    """A controller's violation block is the agency's own control (§21), not a finding of
    the operator; a dismissal is no violation at all."""
    _user(ops, people("Bob"), "bob")
    _user(ops, people("Dan"), "dan")
    ops.lifecycle.block(CONTROLLER, "bob", "violation", "no task named")
    ops.lifecycle.block(OPERATOR, "dan", "dismissal", "order 12")
    assert [n.user_id for n in ops.lifecycle.outbox(CONTROLLER)] == ["bob"]
    assert ops.lifecycle.outbox(PROSECUTOR) == []


# --- §8: a transfer edit not applied within 24 hours is overdue ---------------------------
def test_transfer_pending_past_24_hours_is_overdue(
    ops: Operations, people: Any, clock: Clock
) -> None:
    alice, bob = people("Alice"), people("Bob")
    _user(ops, alice, "alice")
    _user(ops, bob, "bob")
    first = ops.lifecycle.file_transfer(transfer(alice, "alice", clock.now - H))
    assert not first.overdue
    clock.advance(hours=23, minutes=59)
    second = ops.lifecycle.file_transfer(transfer(bob, "bob", clock.now - H))
    assert [e.overdue for e in ops.lifecycle.transfers(OPERATOR)] == [False, False]
    assert ops.lifecycle.transfers(OPERATOR, overdue_only=True) == []
    clock.advance(minutes=2)  # the first edit waits 24 h 01 min
    listed = {e.id: e.overdue for e in ops.lifecycle.transfers(OPERATOR)}
    assert listed == {first.id: True, second.id: False}
    assert [e.id for e in ops.lifecycle.transfers(OPERATOR, overdue_only=True)] == [first.id]
    # Applied, it is no longer overdue (late application is in its applied_at).
    ops.lifecycle.apply_transfer(OPERATOR, first.id)
    assert ops.lifecycle.transfers(OPERATOR, overdue_only=True) == []
    applied = {e.id: e for e in ops.lifecycle.transfers(OPERATOR)}[first.id]
    assert applied.status == "applied" and not applied.overdue


# --- §14: maintenance is announced at least the notice period ahead -----------------------
def test_window_inside_the_notice_period_is_refused_naming_it(
    ops: Operations, clock: Clock, recorder: ListRecorder
) -> None:
    t = clock.now
    with pytest.raises(NoticeTooShort) as caught:
        ops.journal.publish_window(OPERATOR, t + 23 * H, t + 25 * H, "index rebuild")
    message = str(caught.value)
    assert "at least 24 hours before it starts" in message and "urgent" in message
    assert caught.value.reason_code == "MAINTENANCE_NOTICE"
    assert ops.journal.windows() == [] and recorder.of("ops.maintenance.published") == []
    ok = ops.journal.publish_window(OPERATOR, t + 24 * H, t + 26 * H, "index rebuild")
    assert not ok.urgent


def test_urgent_window_needs_no_notice_and_says_so(
    ops: Operations, clock: Clock, recorder: ListRecorder
) -> None:
    t = clock.now
    w = ops.journal.publish_window(OPERATOR, t, t + H, "security patch", urgent=True)
    assert w.urgent and ops.journal.current_window(t) == w
    assert recorder.of("ops.maintenance.published")[0]["details"]["urgent"] is True
    store = Store(ops.ctx.engine.url.render_as_string(hide_password=False))
    try:
        [row] = store.windows()
        assert row.urgent  # what GetServiceStatus shows clients
    finally:
        store.close()


def test_notice_period_is_configurable(ops: Operations, clock: Clock) -> None:
    ops.journal.notice = 2 * H
    t = clock.now
    with pytest.raises(NoticeTooShort, match="at least 2 hours"):
        ops.journal.publish_window(OPERATOR, t + H, t + 3 * H, "upgrade")
    ops.journal.publish_window(OPERATOR, t + 2 * H, t + 3 * H, "upgrade")
