"""R13/R15: violation rules over the audit stream; alerts; blocking rules block at once."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from server.ops import Operations, PermissionDenied, RuleEngine
from server.ops.rules import (
    QueryOutsideBasis,
    QueryWithoutTask,
    RepeatedSignatureFailures,
    SubjectBurst,
)
from siogw_api.errors import InputError
from tests.server.ops.conftest import CONTROLLER, OPERATOR, Clock, ListRecorder
from tests.server.ops.helpers import open_session, session_ended

IIN = "850517300005"


def _user(ops: Operations, user_id: str) -> None:
    ops.lifecycle.import_user(OPERATOR, user_id=user_id, iin=IIN, full_name=user_id,
                              role="agency_user", basis="financial_monitoring")


def query(actor: str, at: _dt.datetime, n: int, *, task: str = "case 7",
          basis: str = "financial_monitoring", subject: str = IIN) -> dict[str, Any]:
    return {"event_type": "query", "actor": actor, "outcome": "success", "time": at, "seq": n,
            "details": {"resource": 1, "basis": basis, "task": task, "request_id": f"r{n}",
                        "subject": subject}}


USER_CERT = "ab" * 32


def sig_failure(actor: str, at: _dt.datetime, n: int,
                signer_cert: str = USER_CERT) -> dict[str, Any]:
    return {"event_type": "refusal", "actor": actor, "outcome": "refused",
            "time": at.isoformat(), "seq": n, "cert": USER_CERT,
            "details": {"reason": "BAD_SIGNATURE", "method": "/siogw.v1.QueryService/Query",
                        "signer_certs": [signer_cert]}}


def test_signature_failures_count_only_with_the_users_own_certificate(
    ops: Operations, clock: Clock
) -> None:
    """Issue 12 point 5: someone else's failing certificate, or an anonymous caller
    naming the user, is not the user's failure."""
    engine = RuleEngine(ops.ctx, ops.lifecycle,
                        [RepeatedSignatureFailures(3, _dt.timedelta(minutes=10))])
    t = clock.now
    foreign = [sig_failure("bob", t, i, signer_cert="cd" * 32) for i in range(5)]
    assert engine.observe_many(foreign) == []
    no_cert = sig_failure("bob", t, 9)
    del no_cert["cert"]
    no_signers = sig_failure("bob", t, 10)
    del no_signers["details"]["signer_certs"]
    anonymous = sig_failure("anonymous", t, 11)
    anonymous["details"]["claimed_user"] = "bob"
    assert engine.observe_many([no_cert, no_signers, anonymous] * 3) == []
    assert len(engine.observe_many([sig_failure("bob", t, 20 + i) for i in range(3)])) == 1


def test_repeated_signature_failures(
    ops: Operations, clock: Clock, recorder: ListRecorder
) -> None:
    rule = RepeatedSignatureFailures(3, _dt.timedelta(minutes=10))
    engine = RuleEngine(ops.ctx, ops.lifecycle, [rule])
    t = clock.now
    assert engine.observe(sig_failure("bob", t, 1)) == []
    assert engine.observe(sig_failure("bob", t + _dt.timedelta(minutes=11), 2)) == []  # 1 left
    assert engine.observe(sig_failure("bob", t + _dt.timedelta(minutes=12), 3)) == []
    [alert] = engine.observe(sig_failure("bob", t + _dt.timedelta(minutes=13), 4))
    assert (alert.rule, alert.user_id) == ("repeated_signature_failures", "bob")
    assert not alert.blocking
    assert alert.details["count"] == 3
    # The window restarted: the next failure alone raises nothing.
    assert engine.observe(sig_failure("bob", t + _dt.timedelta(minutes=14), 5)) == []
    # Other refusals and anonymous failures do not count.
    other = sig_failure("carol", t, 6)
    other["details"]["reason"] = "BASIS_NOT_ALLOWED"
    assert engine.observe_many([other] * 5) == []
    assert engine.observe_many([sig_failure("anonymous", t, i) for i in range(10, 20)]) == []
    assert recorder.of("ops.alert.raised")[0]["details"]["alert_id"] == alert.id
    assert [a.id for a in engine.alerts(CONTROLLER)] == [alert.id]


def test_query_without_task_and_outside_basis(ops: Operations, clock: Clock) -> None:
    _user(ops, "bob")
    bases = {"bob": frozenset({"financial_monitoring"})}
    engine = RuleEngine(ops.ctx, ops.lifecycle,
                        [QueryWithoutTask(), QueryOutsideBasis(bases.get)])
    t = clock.now
    assert engine.observe(query("bob", t, 1)) == []
    [no_task] = engine.observe(query("bob", t, 2, task="  "))
    assert no_task.rule == "query_without_task"
    refused = {"event_type": "refusal", "actor": "bob", "outcome": "refused",
               "details": {"resource": 3, "basis": "financial_monitoring", "task": "",
                           "reason": "MISSING_FIELD"}}
    assert [a.rule for a in engine.observe(refused)] == ["query_without_task"]
    [outside] = engine.observe(query("bob", t, 3, basis="curiosity"))
    assert outside.rule == "query_outside_basis" and outside.details["basis"] == "curiosity"
    assert engine.observe(query("stranger", t, 4, basis="curiosity")) == []  # unknown user
    assert not ops.lifecycle.is_blocked("bob")  # neither rule was blocking


def test_subject_burst_counts_distinct_queries_per_person(ops: Operations, clock: Clock) -> None:
    engine = RuleEngine(ops.ctx, ops.lifecycle, [SubjectBurst(4, _dt.timedelta(hours=1))])
    t = clock.now
    events = [query("bob", t + _dt.timedelta(minutes=i), i) for i in range(3)]
    events.append(query("bob", t, 1))  # the same query again is not a new one
    events.append(query("bob", t, 9, subject="900101300001"))  # another person
    events.append(query("eve", t, 10))  # another user
    assert engine.observe_many(events) == []
    [alert] = engine.observe(query("bob", t + _dt.timedelta(minutes=5), 4))
    assert alert.rule == "subject_burst" and alert.details["count"] == 4
    assert IIN not in alert.summary
    # Spread over more than the window: no alert.
    slow = [query("carol", t + _dt.timedelta(minutes=25 * i), 100 + i) for i in range(6)]
    assert engine.observe_many(slow) == []


def test_blocking_rule_blocks_at_once_and_notifies_the_agency(
    ops: Operations, clock: Clock, recorder: ListRecorder
) -> None:
    _user(ops, "bob")
    session = open_session(ops, "bob", b"bob-cert", "bob-session")
    engine = RuleEngine(ops.ctx, ops.lifecycle, [SubjectBurst(3, blocking=True)])
    alerts = engine.observe_many(query("bob", clock.now, i) for i in range(3))
    [alert] = alerts
    assert alert.blocking and alert.blocked_user
    assert ops.lifecycle.is_blocked("bob") and session_ended(ops, session)
    user = ops.lifecycle.require_user("bob")
    assert user.block_kind == "violation" and "subject_burst" in user.status_reason
    [notice] = ops.lifecycle.outbox(CONTROLLER)
    assert notice.alert_id == alert.id
    assert recorder.of("ops.user.blocked")[0]["actor"] == "system:rules/subject_burst"
    # A second hit on a blocked user raises an alert but does not block again.
    more = engine.observe_many(query("bob", clock.now, 10 + i) for i in range(3))
    assert len(more) == 1 and not more[0].blocked_user
    assert len(ops.lifecycle.outbox(CONTROLLER)) == 1


def test_default_rules_block_outside_basis(ops: Operations, clock: Clock) -> None:
    _user(ops, "bob")
    [alert] = ops.rules.observe(query("bob", clock.now, 1, basis="curiosity"))
    assert alert.rule == "query_outside_basis" and alert.blocked_user
    assert ops.lifecycle.is_blocked("bob")


def test_own_records_and_garbage_are_ignored(ops: Operations, clock: Clock) -> None:
    engine = RuleEngine(ops.ctx, ops.lifecycle, [QueryWithoutTask()])
    own = {"event_type": "ops.user.blocked", "actor": "olga", "outcome": "success",
           "details": {"resource": 1}}
    assert engine.observe(own) == []
    assert engine.observe({"event_type": "query", "actor": "bob", "time": "yesterday",
                           "details": {"resource": 1}}) == []


def test_acknowledge_and_roles(ops: Operations, clock: Clock, recorder: ListRecorder) -> None:
    engine = RuleEngine(ops.ctx, ops.lifecycle, [QueryWithoutTask()])
    [alert] = engine.observe(query("bob", clock.now, 1, task=""))
    acked = engine.acknowledge(CONTROLLER, alert.id)
    assert acked.acknowledged_by == CONTROLLER.user_id
    assert engine.alerts(CONTROLLER, open_only=True) == []
    with pytest.raises(PermissionDenied):
        engine.alerts(OPERATOR)
    with pytest.raises(InputError):
        SubjectBurst(0)


def test_a_batch_reads_each_users_basis_once(ops: Operations, clock: Clock) -> None:
    calls: list[str] = []
    bases = {"bob": frozenset({"financial_monitoring"})}

    def bases_of(user_id: str) -> frozenset[str] | None:
        calls.append(user_id)
        return bases.get(user_id)

    engine = RuleEngine(ops.ctx, ops.lifecycle, [QueryOutsideBasis(bases_of)])
    t = clock.now
    batch = [query("bob", t, i) for i in range(5)] + [query("eve", t, 9)]
    assert engine.observe_many(batch) == []
    assert calls == ["bob", "eve"]
    # Outside a batch every event asks again (a changed basis is seen at once).
    bases["bob"] = frozenset({"other"})
    [alert] = engine.observe(query("bob", t, 20))
    assert alert.rule == "query_outside_basis" and calls[-1] == "bob"


def test_replay_after_a_restart_follows_the_alerts_already_raised(
    ops: Operations, clock: Clock
) -> None:
    """Replayed from mid-window, the counts restart where the first run raised alerts."""
    t = clock.now
    first = RuleEngine(ops.ctx, ops.lifecycle, [SubjectBurst(4, _dt.timedelta(hours=1))])
    events = [query("bob", t + _dt.timedelta(seconds=n), n) for n in range(1, 13)]
    raised = first.observe_many(events)
    assert [a.record_seq for a in raised] == [4, 8, 12]
    # Restart: the new engine replays from seq 3 on (1 and 2 fell out of the replay range)
    # plus two records the first run never observed (it died after writing them).
    second = RuleEngine(ops.ctx, ops.lifecycle, [SubjectBurst(4, _dt.timedelta(hours=1))])
    later = events[2:] + [query("bob", t + _dt.timedelta(seconds=n), n) for n in (13, 14)]
    assert second.replay(later, since_seq=3) == []  # no duplicate, none invented
    # Counting goes on from the replayed state: 13, 14 and two more make a burst.
    [alert] = second.observe_many(
        [query("bob", t + _dt.timedelta(seconds=n), n) for n in (15, 16)])
    assert alert.record_seq == 16
    # A burst that the first run never got to raise is raised by the replay.
    third = RuleEngine(ops.ctx, ops.lifecycle, [SubjectBurst(4, _dt.timedelta(hours=1))])
    unseen = [query("eve", t + _dt.timedelta(seconds=n), n) for n in range(30, 34)]
    [missed] = third.replay(unseen, since_seq=30)
    assert (missed.user_id, missed.record_seq) == ("eve", 33)
    assert third.longest_window() == _dt.timedelta(hours=1)
