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


# --- §14: the Journal of emergencies gets entries by itself -------------------------------
class _Health:
    """The audit log's health as ``AuditLog.health()`` reports it (state, reason)."""

    def __init__(self) -> None:
        self.state, self.reason = "ok", None

    def __call__(self) -> _Health:
        return self


def test_audit_log_failure_is_journaled_without_the_log_then_logged_on_recovery(
    ops: Operations, recorder: ListRecorder, clock: Clock
) -> None:
    """The entry cannot depend on the failed log: it is in the database at once, and its
    audit records follow when the log takes records again."""
    from server.emergency_watch import AUDIT_LOG, EmergencyWatch

    health = _Health()
    watch = EmergencyWatch(ops.auto_journal, audit_health=health)
    watch.run_once()
    assert ops.journal.emergencies(OPERATOR) == []
    health.state, health.reason = "failed", "the disk is full"
    recorder.fail = True  # what a failed log does to every append
    watch.run_once()
    watch.run_once()  # still failed: one entry per outage
    [entry] = ops.journal.emergencies(OPERATOR, open_only=True)
    assert entry.recorded_by == f"system:{AUDIT_LOG}" and "the disk is full" in entry.causes
    assert "fails closed" in entry.measures
    assert recorder.events == [] and ops.auto_journal.pending() == 1
    # the log works again (a restart: a new watch over the same database)
    clock.advance(minutes=5)
    health.state, health.reason = "ok", None
    recorder.fail = False
    EmergencyWatch(ops.auto_journal, audit_health=health).run_once()
    [done] = ops.journal.emergencies(OPERATOR)
    assert done.resolved_at == clock.now and done.onset_at == entry.onset_at
    logged = recorder.of("emergency")
    assert [(e["actor"], e["details"]["action"]) for e in logged] == [
        ("system:audit_log", "recorded"), ("system:audit_log", "resolved")]
    assert logged[0]["details"]["causes"] == entry.causes
    assert ops.auto_journal.pending() == 0


def test_signer_and_breaker_failures_are_journaled_and_resolved(
    ops: Operations, recorder: ListRecorder
) -> None:
    from server.emergency_watch import GATEWAY_SIGNER, EmergencyWatch
    from server.resources.remote import BreakerState, CircuitBreaker
    from siogw_api.errors import SigningError

    watch = EmergencyWatch(ops.auto_journal)
    breaker = CircuitBreaker(failure_threshold=2, name="https://upstream.test/api")
    breaker.on_state_change = watch.breaker_changed
    watch.signer_ok()  # no failure: nothing to report
    watch.signer_failed(SigningError("the token was removed"))
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    watch.run_once()
    entries = {e.recorded_by: e for e in ops.journal.emergencies(OPERATOR, open_only=True)}
    assert set(entries) == {f"system:{GATEWAY_SIGNER}", "system:upstream:https://upstream.test/api"}
    assert "the token was removed" in entries[f"system:{GATEWAY_SIGNER}"].causes
    assert "2 consecutive failure(s)" in entries["system:upstream:https://upstream.test/api"].causes
    assert len(recorder.of("emergency")) == 2  # the log works: recorded at once
    watch.signer_ok()
    breaker.record_success()
    watch.run_once()
    assert ops.journal.emergencies(OPERATOR, open_only=True) == []
    assert [e["details"]["action"] for e in recorder.of("emergency")] == [
        "recorded", "recorded", "resolved", "resolved"]


def test_a_real_audit_log_failing_closed_is_journaled_and_logged_after_restart(
    engine: Any, trust: Any, audit_index: Any, clock: Clock, tmp_path: Any
) -> None:
    """The real ``audit.AuditLog``: its audit key fails past the grace period, the log
    fails closed; the entry is in the Journal at once; after a restart with the key
    working, the entry is resolved and both its records are in the log."""
    from audit import AuditConfig, AuditLog
    from server.emergency_watch import EmergencyWatch
    from server.ops import AuditIndexQueries, audit_log_recorder
    from tests.audit.conftest import ORIGIN, rec, soft_signer
    from tests.audit.test_log import FlakySigner, _wait_for

    flaky = FlakySigner(soft_signer())
    cfg = AuditConfig(segment_max_records=2, seal_grace_seconds=0)
    log = AuditLog.open(tmp_path / "log", flaky, ORIGIN, cfg)
    try:
        ops = Operations.open(engine, record=audit_log_recorder(log), trust=trust,
                              index=AuditIndexQueries(audit_index), clock=clock)
        log.append_sync(rec(0))
        log.append_sync(rec(1))  # rolls; sealing fails past the grace: the log fails closed
        _wait_for(lambda: log.health().state == "failed")
        EmergencyWatch(ops.auto_journal, audit_health=log.health).run_once()
        [entry] = ops.journal.emergencies(OPERATOR, open_only=True)
        assert entry.recorded_by == "system:audit_log" and "failed closed" in entry.causes
        assert ops.auto_journal.pending() == 1
    finally:
        log.close()
    flaky.broken = False  # the token is back; the gateway starts again
    log = AuditLog.open(tmp_path / "log", flaky, ORIGIN, AuditConfig(segment_max_records=2))
    try:
        assert log.health().state == "ok"
        size = log.health().tree_size
        ops = Operations.open(engine, record=audit_log_recorder(log), trust=trust,
                              index=AuditIndexQueries(audit_index), clock=clock)
        EmergencyWatch(ops.auto_journal, audit_health=log.health).run_once()
        assert ops.journal.emergencies(OPERATOR, open_only=True) == []
        assert ops.auto_journal.pending() == 0
        assert log.health().tree_size == size + 2  # "recorded", then "resolved"
    finally:
        log.close()
