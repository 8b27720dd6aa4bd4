"""Roles and the permission matrix of the operations domain (R12, R15, R16).

One table, :data:`PERMISSIONS`, says which roles may perform each :class:`Action`; one
function, :func:`authorize`, enforces it. Services call it first thing in every public
method that acts for a person. R12: only the roles the rules name read others' queries
-- the controller through Reports (:attr:`Action.REPORT_READ`) and the prosecutor
within a resolution's scope (:attr:`Action.AUDIT_TRAIL_READ`); :data:`AUDIT_READERS`
lists those actions and the tests pin them to exactly one role each.

Who may block or unblock whom (issue 13, defect 12) is a second table, by the actor's
role AND the target's: :data:`BLOCK_TARGETS` and :data:`UNBLOCK_TARGETS`, enforced by
:func:`authorize_status_change` after :func:`authorize` (``docs/adr/0006-operations.md``
has the table in words). The rules that need the database -- never the last active
operator, never oneself -- are :func:`server.ops.lifecycle.check_status_change`'s.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.ops.errors import PermissionDenied
from server.resources.catalogue import Role
from siogw_api.errors import InputError

__all__ = [
    "AUDIT_READERS",
    "BLOCK_TARGETS",
    "PERMISSIONS",
    "UNBLOCK_TARGETS",
    "Action",
    "Actor",
    "Role",
    "authorize",
    "authorize_status_change",
]


class Action(enum.StrEnum):
    """Everything a person can ask of the operations domain or the gateway."""

    QUERY_SEND = "query.send"
    APPLICATION_LIST = "application.list"
    APPLICATION_DECIDE = "application.decide"
    TRANSFER_APPLY = "transfer.apply"
    USER_LIST = "user.list"
    USER_IMPORT = "user.import"
    USER_BLOCK = "user.block"
    USER_UNBLOCK = "user.unblock"
    OUTBOX_READ = "outbox.read"
    ALERT_READ = "alert.read"
    ALERT_ACK = "alert.ack"
    MAINTENANCE_PUBLISH = "maintenance.publish"
    MAINTENANCE_READ = "maintenance.read"
    EMERGENCY_RECORD = "emergency.record"
    EMERGENCY_READ = "emergency.read"
    REPORT_READ = "report.read"
    REVIEW_RECORD = "review.record"
    REVIEW_STATUS = "review.status"
    RESOLUTION_REGISTER = "resolution.register"
    AUDIT_TRAIL_READ = "audit_trail.read"
    CERTIFICATE_LIST = "certificate.list"
    CERTIFICATE_REGISTER = "certificate.register"
    CERTIFICATE_REVOKE = "certificate.revoke"
    CRL_IMPORT = "crl.import"
    #: FM-1 reporting (issue 16): submit, and read one's own provider's messages.
    FM1_SUBMIT = "fm1.submit"
    #: FM-1 reporting: read every provider's messages (the agency's analysts).
    FM1_READ = "fm1.read"


_A, _O, _C, _P, _S = (
    Role.AGENCY_USER, Role.OPERATOR, Role.CONTROLLER, Role.PROSECUTOR, Role.SECURITY_OFFICER
)

#: Action -> the roles allowed to perform it. Every action is listed.
PERMISSIONS: Mapping[Action, frozenset[Role]] = MappingProxyType(
    {
        Action.QUERY_SEND: frozenset({_A}),
        # R3/R4: the operator decides applications and edits users (§6-§8).
        Action.APPLICATION_LIST: frozenset({_O}),
        Action.APPLICATION_DECIDE: frozenset({_O}),
        Action.TRANSFER_APPLY: frozenset({_O}),
        Action.USER_LIST: frozenset({_O}),
        Action.USER_IMPORT: frozenset({_O}),
        # R4/R13/R15: the operator blocks; controllers block on a violation at once (§21);
        # the security team blocks on a lost key, and lifts such a block once the key is
        # replaced. Whom each may block or unblock: BLOCK_TARGETS, UNBLOCK_TARGETS.
        Action.USER_BLOCK: frozenset({_O, _C, _S}),
        Action.USER_UNBLOCK: frozenset({_O, _S}),
        # R13: the agency side (its controllers) reads the violation notices; §23: the
        # prosecutor reads its own copy of those the operator found (its own outbox).
        Action.OUTBOX_READ: frozenset({_C, _P}),
        Action.ALERT_READ: frozenset({_C}),
        Action.ALERT_ACK: frozenset({_C}),
        # R10: the operator publishes maintenance and keeps the Journal of emergencies.
        Action.MAINTENANCE_PUBLISH: frozenset({_O}),
        Action.MAINTENANCE_READ: frozenset({_A, _O, _C, _P, _S}),
        Action.EMERGENCY_RECORD: frozenset({_O}),
        Action.EMERGENCY_READ: frozenset({_O, _S}),
        # R12/R15: Reports are the controllers'; R16: the prosecutor reads within scope.
        Action.REPORT_READ: frozenset({_C}),
        Action.REVIEW_RECORD: frozenset({_C}),
        Action.REVIEW_STATUS: frozenset({_C}),
        Action.RESOLUTION_REGISTER: frozenset({_P}),
        Action.AUDIT_TRAIL_READ: frozenset({_P}),
        # R8: certificates and keys are the security team's (the operator may register
        # the certificate of a user it enrols, and revoke on a reported loss).
        Action.CERTIFICATE_LIST: frozenset({_O, _S}),
        Action.CERTIFICATE_REGISTER: frozenset({_O, _S}),
        Action.CERTIFICATE_REVOKE: frozenset({_O, _S}),
        Action.CRL_IMPORT: frozenset({_S}),
        # R17: a provider's compliance officer reports; the agency's analysts read.
        Action.FM1_SUBMIT: frozenset({Role.COMPLIANCE_OFFICER}),
        Action.FM1_READ: frozenset({_A}),
    }
)

#: Actions that reveal other people's queries (R12). Each has exactly one role.
AUDIT_READERS: Mapping[Action, Role] = MappingProxyType(
    {Action.REPORT_READ: _C, Action.AUDIT_TRAIL_READ: _P}
)


#: Actor's role -> the roles of the users it may block. The operator blocks anyone,
#: whatever the role, even one this table does not know (§8; never the last active
#: operator); a controller blocks the agency users whose
#: queries it reviews (§21, R15); the security team blocks on a lost key anyone but an
#: operator (an operator's lost key is revoked: the revocation ends the sessions too).
BLOCK_TARGETS: Mapping[Role, frozenset[Role]] = MappingProxyType(
    {
        _O: frozenset(Role),
        _C: frozenset({_A}),
        _S: frozenset({_A, _C, _P, _S, Role.COMPLIANCE_OFFICER}),
    }
)

#: Actor's role -> the roles of the users it may unblock. The operator lifts any block
#: (§8); the security officer lifts the blocks it may impose, except a violation block
#: (a violation is the operator's to clear, R13). A controller unblocks no one.
UNBLOCK_TARGETS: Mapping[Role, frozenset[Role]] = MappingProxyType(
    {
        _O: frozenset(Role),
        _S: frozenset({_A, _C, _P, _S, Role.COMPLIANCE_OFFICER}),
    }
)

#: The block kind only the operator may lift.
OPERATOR_ONLY_UNBLOCK_KIND = "violation"


def authorize_status_change(
    role: Role | str, target_role: Role | str, *, block: bool, block_kind: str | None = None
) -> None:
    """Return if ``role`` may block (or unblock) a user of ``target_role``; else raise
    :class:`PermissionDenied`. Call after :func:`authorize` of the action."""
    try:
        who = Role(role)
    except ValueError:
        raise PermissionDenied(f"unknown role {role!r} may not change a user's status") from None
    try:
        target = Role(target_role)
    except ValueError:
        target = None
    if who is _O:  # the operator edits and blocks users (§8), whatever their role
        return
    verb = "block" if block else "unblock"
    allowed = (BLOCK_TARGETS if block else UNBLOCK_TARGETS).get(who, frozenset())
    if target is None or target not in allowed:
        raise PermissionDenied(
            f"the {who.value} may not {verb} a user with the role {target_role}"
        )
    if not block and block_kind == OPERATOR_ONLY_UNBLOCK_KIND and who is not _O:
        raise PermissionDenied("only an operator may lift a violation block")


@dataclass(frozen=True)
class Actor:
    """Who is acting: an authenticated user id and the role the gateway knows for it."""

    user_id: str
    role: Role | str

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise InputError("an actor needs a non-empty user id")


def authorize(role: Role | str, action: Action | str) -> None:
    """Return if ``role`` may perform ``action``; raise :class:`PermissionDenied` if not.

    An unknown role is denied (never a ``ValueError``); an unknown action is a
    programming error reported as :class:`~siogw_api.errors.InputError`.
    """
    try:
        act = Action(action)
    except ValueError:
        raise InputError(f"unknown action {action!r}") from None
    try:
        who = Role(role)
    except ValueError:
        raise PermissionDenied(f"unknown role {role!r} may not {act.value}") from None
    if who not in PERMISSIONS[act]:
        raise PermissionDenied(f"role {who.value} may not {act.value}")
