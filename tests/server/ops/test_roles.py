"""The role matrix: each role x each action, both as a table and through the services."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import Any

import pytest

from server.ops import (
    AUDIT_READERS,
    PERMISSIONS,
    Action,
    Actor,
    BlockKind,
    Operations,
    PermissionDenied,
    Role,
    authorize,
)
from siogw_api.errors import InputError, SiogwError
from tests.server.ops.conftest import OPERATOR, Clock

A, OP, C, P, S = "agency_user", "operator", "controller", "prosecutor", "security_officer"

#: Written out independently of PERMISSIONS, from the rules (see docs/adr/0006).
EXPECTED: dict[str, set[str]] = {
    "query.send": {A},
    "application.list": {OP},
    "application.decide": {OP},
    "transfer.apply": {OP},
    "user.list": {OP},
    "user.import": {OP},
    "user.block": {OP, C, S},
    "user.unblock": {OP, S},
    "outbox.read": {C, P},
    "alert.read": {C},
    "alert.ack": {C},
    "maintenance.publish": {OP},
    "maintenance.read": {A, OP, C, P, S},
    "emergency.record": {OP},
    "emergency.read": {OP, S},
    "report.read": {C},
    "review.record": {C},
    "review.status": {C},
    "resolution.register": {P},
    "audit_trail.read": {P},
    "certificate.list": {OP, S},
    "certificate.register": {OP, S},
    "certificate.revoke": {OP, S},
    "crl.import": {S},
    "fm1.submit": {"compliance_officer"},
    "fm1.read": {A},
}


def test_every_action_is_in_the_matrix() -> None:
    assert {a.value for a in Action} == set(EXPECTED) == {a.value for a in PERMISSIONS}


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_matrix(role: str, action: str) -> None:
    if role in EXPECTED[action]:
        authorize(role, action)
    else:
        with pytest.raises(PermissionDenied, match=f"role {role} may not {action}"):
            authorize(role, action)


def test_only_named_roles_read_the_audit_trail() -> None:
    """R12: Reports are the controller's, scoped trail reads the prosecutor's; nobody else."""
    assert dict(AUDIT_READERS) == {Action.REPORT_READ: Role.CONTROLLER,
                                   Action.AUDIT_TRAIL_READ: Role.PROSECUTOR}
    for action, role in AUDIT_READERS.items():
        assert PERMISSIONS[action] == frozenset({role})


def test_unknown_role_and_action() -> None:
    with pytest.raises(PermissionDenied):
        authorize("root", Action.REPORT_READ)
    with pytest.raises(PermissionDenied):
        authorize("", Action.MAINTENANCE_READ)
    with pytest.raises(InputError):
        authorize(Role.OPERATOR, "launch.missiles")
    with pytest.raises(InputError):
        Actor("", Role.OPERATOR)


def _calls(ops: Operations, target_der: bytes, clock: Clock) -> dict[str, Callable[[Actor], Any]]:
    t = clock.now
    return {
        "application.list": lambda a: ops.applications.overdue(a),
        "application.decide": lambda a: ops.applications.register(a, "no-such-application"),
        "transfer.apply": lambda a: ops.lifecycle.apply_transfer(a, "no-such-transfer"),
        "user.list": lambda a: ops.lifecycle.users(a),
        "user.import": lambda a: ops.lifecycle.import_user(
            a, user_id=f"imp-{a.role}", iin="850517300005", full_name="X", role="agency_user"),
        "user.block": lambda a: ops.lifecycle.block(a, "target", BlockKind.SUSPENSION, "test"),
        "user.unblock": lambda a: ops.lifecycle.unblock(a, "target", "test"),
        "outbox.read": lambda a: ops.lifecycle.outbox(a),
        "alert.read": lambda a: ops.rules.alerts(a),
        "alert.ack": lambda a: ops.rules.acknowledge(a, 999_999),
        "maintenance.publish": lambda a: ops.journal.publish_window(
            a, t, t + _dt.timedelta(hours=1), "upgrade", urgent=True),
        "emergency.record": lambda a: ops.journal.record_emergency(
            a, onset_at=t, causes="power", measures="generator"),
        "emergency.read": lambda a: ops.journal.emergencies(a),
        "report.read": lambda a: ops.reports.queries(a),
        "review.record": lambda a: ops.reports.record_review(a, t - _dt.timedelta(days=30), t),
        "review.status": lambda a: ops.reports.overdue_reviews(a),
        "resolution.register": lambda a: ops.prosecutor.register_resolution(a, b"{}"),
        "audit_trail.read": lambda a: ops.prosecutor.read_trail(a, "no-such-resolution"),
        "certificate.list": lambda a: ops.certificates.overview(a),
        "certificate.register": lambda a: ops.certificates.register(a, "target", target_der),
        "certificate.revoke": lambda a: ops.certificates.revoke(a, "0" * 64, "lost"),
        "crl.import": lambda a: ops.certificates.import_crl(a, b"not a crl"),
    }


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_service_matrix(role: str, ops: Operations, people: Any, clock: Clock) -> None:
    """Every service entry point refuses exactly the roles the matrix refuses (on each DB)."""
    target = people("target")
    ops.lifecycle.import_user(OPERATOR, user_id="target", iin=target.iin, full_name="T",
                              role="agency_user")
    actor = Actor(f"{role}-1", role)
    calls = _calls(ops, target.cert_der, clock)
    # Every action but those the services do not gate (queries and FM-1 are the gateway's,
    # maintenance windows are public) has an entry point here.
    assert set(calls) == set(EXPECTED) - {"query.send", "maintenance.read", "fm1.submit",
                                         "fm1.read"}
    role_denial = re.compile(rf"^role {role} may not ")
    for action, call in calls.items():
        try:
            call(actor)
        except PermissionDenied as exc:
            denied = bool(role_denial.match(exc.message))
        except SiogwError:
            denied = False  # allowed through the role check, refused for another reason
        else:
            denied = False
        assert denied == (role not in EXPECTED[action]), (role, action)
