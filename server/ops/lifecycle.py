"""User lifecycle (R4, R13): transfer edits, blocking and unblocking, agency notices.

A user is one row of the control plane's ``users`` table (:mod:`server.store.schema`):
the one the gateway's session check reads on every call, in every process. This
service reads and writes that row; :class:`UserRecord` is its operations view (IIN,
basis, block kind, application).

* A transfer edit is a document the user signs (``application/vnd.siogw.transfer+json``)
  naming the new unit and post and the order's number and signing time; filed more
  than 24 hours after the order it is flagged ``late`` (§7). The operator applies it.
  Each document counts once: filed again (the same signed payload, even re-signed) it
  is refused with :class:`~server.ops.errors.DocumentReplayed` (``ALREADY_EXISTS``,
  the first filing's id in ``original_id``). An edit still pending
  :data:`APPLY_DEADLINE` after it was filed is ``overdue`` in the transfer list (§8: the
  operator applies it at once; the list shows which ones waited too long).
* Blocking (dismissal, suspension, violation) takes a reason and is immediate: the
  status changes and the user's live sessions end in the same transaction
  (:func:`server.store.users.set_status`), so the next call of any gateway process
  fails. A violation block appends a notice to the agency outbox
  (``ops_agency_outbox``), which the agency side reads; one the operator found (an
  operator's block, or a blocking rule's: the operator's monitoring) goes to the
  prosecutor's outbox too (``ops_prosecutor_outbox``, §23: the prosecutor acts on
  "information from the operator about violations found"). A controller's violation
  block is the agency's own control (§21) and stays with the agency.
* Who may block or unblock whom is :data:`server.ops.roles.BLOCK_TARGETS` /
  :data:`~server.ops.roles.UNBLOCK_TARGETS` (by actor's and target's role; a violation
  block is lifted by the operator only), and :func:`check_status_change` adds what
  needs the database, in the same transaction as the change: no one blocks themselves,
  and the last active operator is never blocked (the active operators' rows are locked
  first, so two operators blocking each other at once cannot both succeed). The
  AdminService's store path (users without an operations record) runs the same check
  (:func:`server.admin.execute`).
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from server.ops import schema as s
from server.ops.base import OpsContext, text_field, time_field, utc, utc_required
from server.ops.certificates import active_certificates, insert_certificate
from server.ops.documents import (
    PAYLOAD_TRANSFER,
    der_of,
    fingerprint,
    parse_certificate,
    peek_payload,
    verify_document,
)
from server.ops.errors import (
    DocumentReplayed,
    Duplicate,
    InvalidDocument,
    InvalidState,
    NotFound,
    PermissionDenied,
    SignerMismatch,
)
from server.ops.roles import Action, Actor, Role, authorize, authorize_status_change
from server.store import schema as cp
from server.store.users import set_status
from signing.dsse import decode_envelope
from signing.trust import TrustChecker
from siogw_api.timeutil import astana_iso

#: A transfer edit filed later than this after the order's signing is late (§7).
TRANSFER_DEADLINE = _dt.timedelta(hours=24)
#: A filed transfer edit not applied within this is overdue (§8: "незамедлительно").
APPLY_DEADLINE = _dt.timedelta(hours=24)
#: Clock skew tolerated for an order "signed in the future".
ORDER_SKEW = _dt.timedelta(minutes=5)

class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class BlockKind(enum.StrEnum):
    """Why access is blocked (§7, §17; Rules 21 §15)."""

    DISMISSAL = "dismissal"
    SUSPENSION = "suspension"
    VIOLATION = "violation"


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    iin: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    basis: str
    status: str
    block_kind: str | None
    status_reason: str
    application_id: str | None

    @property
    def blocked(self) -> bool:
        return self.status != UserStatus.ACTIVE


@dataclass(frozen=True)
class TransferEdit:
    id: str
    user_id: str
    unit: str
    post: str
    order_number: str
    order_signed_at: _dt.datetime
    received_at: _dt.datetime
    late: bool
    status: str
    applied_at: _dt.datetime | None
    applied_by: str | None
    #: Pending for more than :data:`APPLY_DEADLINE` when the list was read.
    overdue: bool = False


@dataclass(frozen=True)
class Notification:
    """A notice to the agency (R13): which user was blocked for what."""

    id: int
    created_at: _dt.datetime
    user_id: str
    kind: str
    reason: str
    alert_id: int | None
    read_at: _dt.datetime | None


def check_status_change(
    conn: Connection, actor: Actor, user_id: str, *, block: bool
) -> sa.Row[tuple[object, ...]]:
    """The rules of who may block or unblock whom, in ``conn``'s transaction (module doc).

    Returns the target's row; :class:`NotFound` for an unknown user,
    :class:`PermissionDenied` for a change the rules refuse.
    """
    row = conn.execute(
        sa.select(cp.users).where(cp.users.c.user_id == user_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no user {user_id!r}")
    authorize_status_change(actor.role, row.role, block=block, block_kind=row.block_kind)
    if block and actor.user_id == user_id:
        raise PermissionDenied("a user may not block themselves")
    if block and row.role == Role.OPERATOR and row.status == UserStatus.ACTIVE:
        operators = conn.execute(
            sa.select(cp.users.c.user_id).where(
                cp.users.c.role == Role.OPERATOR.value,
                cp.users.c.status == UserStatus.ACTIVE.value,
            ).with_for_update()
        ).scalars().all()
        if not [u for u in operators if u != user_id]:
            raise PermissionDenied("the last active operator may not be blocked")
    return row


def _filed_transfer(conn: Connection, user_id: str, payload_sha256: str) -> str | None:
    """The id of ``user_id``'s transfer edit whose signed payload has this SHA-256, if
    one was filed (single use, issue 13 defect 13). The user's row is locked first, so
    two filings of one document at once are serialised and the second one finds the
    first. A re-signed copy of the same payload is the same edit; a user files few."""
    conn.execute(
        sa.select(cp.users.c.user_id).where(cp.users.c.user_id == user_id).with_for_update()
    )
    rows = conn.execute(
        sa.select(s.transfers.c.id, s.transfers.c.envelope_json)
        .where(s.transfers.c.user_id == user_id).order_by(s.transfers.c.received_at)
    ).all()
    for row in rows:
        filed = hashlib.sha256(decode_envelope(bytes(row.envelope_json)).payload).hexdigest()
        if filed == payload_sha256:
            return str(row.id)
    return None


def user_from_row(row: sa.Row[tuple[object, ...]]) -> UserRecord:
    m = row._mapping
    return UserRecord(**{k: m[k] for k in UserRecord.__dataclass_fields__})


def _transfer(row: sa.Row[tuple[object, ...]], now: _dt.datetime | None = None) -> TransferEdit:
    m = row._mapping
    received = utc_required(m["received_at"])
    overdue = (now is not None and m["status"] == "pending"
               and now - received > APPLY_DEADLINE)
    return TransferEdit(
        id=m["id"], user_id=m["user_id"], unit=m["unit"], post=m["post"],
        order_number=m["order_number"], order_signed_at=utc_required(m["order_signed_at"]),
        received_at=received, late=bool(m["late"]), status=m["status"],
        applied_at=utc(m["applied_at"]), applied_by=m["applied_by"], overdue=overdue,
    )


def _notice(row: sa.Row[tuple[object, ...]]) -> Notification:
    m = row._mapping
    return Notification(
        id=int(m["id"]), created_at=utc_required(m["created_at"]), user_id=m["user_id"],
        kind=m["kind"], reason=m["reason"], alert_id=m["alert_id"], read_at=utc(m["read_at"]),
    )


def insert_user(
    conn: Connection,
    *,
    user_id: str,
    iin: str,
    full_name: str,
    role: str,
    unit: str,
    post: str,
    phone: str,
    basis: str,
    application_id: str | None,
    now: _dt.datetime,
) -> UserRecord:
    if not user_id or len(user_id) > 64:
        raise InvalidDocument("a user id must be 1-64 characters")
    if conn.execute(sa.select(cp.users.c.user_id).where(cp.users.c.user_id == user_id)).first():
        raise Duplicate(f"user {user_id!r} exists already")
    conn.execute(
        cp.users.insert().values(
            user_id=user_id, iin=iin, full_name=full_name, role=role, unit=unit, post=post,
            phone=phone, basis=basis, status=UserStatus.ACTIVE.value, block_kind=None,
            status_reason="", application_id=application_id, device_public_key_der=None,
            created_at=now, updated_at=now,
        )
    )
    row = conn.execute(sa.select(cp.users).where(cp.users.c.user_id == user_id)).one()
    return user_from_row(row)


class LifecycleService:
    """See the module docstring."""

    def __init__(self, ctx: OpsContext, trust: TrustChecker) -> None:
        self.ctx = ctx
        self.trust = trust

    # --- reading ---------------------------------------------------------------------
    def get_user(self, user_id: str) -> UserRecord | None:
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(cp.users).where(cp.users.c.user_id == user_id)).first()
        return user_from_row(row) if row is not None else None

    def require_user(self, user_id: str) -> UserRecord:
        user = self.get_user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        return user

    def is_blocked(self, user_id: str) -> bool:
        """True if this user is blocked (False for an unknown user)."""
        with self.ctx.tx() as conn:
            status = conn.execute(
                sa.select(cp.users.c.status).where(cp.users.c.user_id == user_id)
            ).scalar()
        return status is not None and status != UserStatus.ACTIVE.value

    def manages(self, user_id: str) -> bool:
        """True if the user has an operations record: registered from an application or
        imported with an IIN. AdminService runs the block, unblock and certificate
        commands of these users through this domain (reason required, recorded as
        ``ops.*`` events); users enrolled by EnrollUser or ``siogw admin`` keep the
        store's commands. Either way it is the same row."""
        with self.ctx.tx() as conn:
            iin = conn.execute(
                sa.select(cp.users.c.iin).where(cp.users.c.user_id == user_id)
            ).scalar()
        return bool(iin)

    def users(self, actor: Actor, *, role: Role | str | None = None) -> Sequence[UserRecord]:
        authorize(actor.role, Action.USER_LIST)
        stmt = sa.select(cp.users).order_by(cp.users.c.user_id)
        if role is not None:
            stmt = stmt.where(cp.users.c.role == str(role))
        with self.ctx.tx() as conn:
            return [user_from_row(r) for r in conn.execute(stmt).all()]

    # --- users enrolled before / outside the application procedure -------------------
    def import_user(
        self,
        actor: Actor,
        *,
        user_id: str,
        iin: str,
        full_name: str,
        role: Role | str,
        unit: str = "",
        post: str = "",
        phone: str = "",
        basis: str = "",
        certificate_der: bytes | None = None,
        token_label: str | None = None,
    ) -> UserRecord:
        """Add a user outside the application procedure, with an operations record (IIN,
        basis; :class:`~server.ops.errors.Duplicate` if the user id is taken)."""
        authorize(actor.role, Action.USER_IMPORT)
        try:
            role = Role(role)
        except ValueError:
            raise InvalidDocument(f"unknown role {role!r}") from None
        cert = parse_certificate(certificate_der) if certificate_der is not None else None
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            user = insert_user(
                conn, user_id=user_id, iin=iin, full_name=full_name, role=role.value, unit=unit,
                post=post, phone=phone, basis=basis, application_id=None, now=now,
            )
            if cert is not None:
                insert_certificate(conn, user_id, cert, now=now, token_label=token_label)
            self.ctx.record("ops.user.imported", actor.user_id, "success",
                            {"user_id": user_id, "role": role.value})
        return user

    # --- transfer edits (R4) ---------------------------------------------------------
    def file_transfer(
        self, envelope_json: bytes, *, received_at: _dt.datetime | None = None
    ) -> TransferEdit:
        """File a transfer edit signed by the user with a registered, unrevoked certificate."""
        received = utc_required(received_at) if received_at is not None else self.ctx.now()
        claimed = peek_payload(envelope_json).get("user_id")
        if not isinstance(claimed, str) or not claimed:
            raise InvalidDocument("the transfer edit names no user_id")
        with self.ctx.tx() as conn:
            user_row = conn.execute(
                sa.select(cp.users).where(cp.users.c.user_id == claimed)).first()
            if user_row is None:
                raise NotFound(f"no user {claimed!r}")
            certs = active_certificates(conn, claimed)
        doc, signer_cert = verify_document(
            envelope_json, PAYLOAD_TRANSFER, self.trust, certificates=certs, at=received
        )
        allowed = {fingerprint(der_of(c)) for c in certs}
        if fingerprint(der_of(signer_cert)) not in allowed:
            raise SignerMismatch("a transfer edit must be signed with the user's registered "
                                 "certificate")
        what = "the transfer edit"
        if text_field(doc, "user_id", what) != claimed:
            raise InvalidDocument("the transfer edit's user_id changed under verification")
        unit = text_field(doc, "unit", what, limit=300)
        post = text_field(doc, "post", what, limit=300)
        order_number = text_field(doc, "order_number", what, limit=100)
        order_signed_at = time_field(doc, "order_signed_at", what)
        if order_signed_at > received + ORDER_SKEW:
            raise InvalidDocument("the order's signing time is in the future")
        late = received - order_signed_at > TRANSFER_DEADLINE
        digest = hashlib.sha256(decode_envelope(envelope_json).payload).hexdigest()
        edit_id = uuid.uuid4().hex
        with self.ctx.tx() as conn:
            original = _filed_transfer(conn, claimed, digest)
            if original is not None:
                raise DocumentReplayed(
                    f"this transfer edit was filed already, as transfer {original}",
                    original_id=original,
                )
            conn.execute(
                s.transfers.insert().values(
                    id=edit_id, user_id=claimed, unit=unit, post=post, order_number=order_number,
                    order_signed_at=order_signed_at, received_at=received, late=late,
                    envelope_json=envelope_json, status="pending",
                )
            )
            self.ctx.record(
                "ops.transfer.filed", claimed, "success",
                {"transfer_id": edit_id, "order_number": order_number,
                 "order_signed_at": astana_iso(order_signed_at),
                 "received_at": astana_iso(received), "late": late},
            )
            row = conn.execute(sa.select(s.transfers).where(s.transfers.c.id == edit_id)).one()
        return _transfer(row)

    def transfers(
        self, actor: Actor, *, late_only: bool = False, pending_only: bool = False,
        overdue_only: bool = False,
    ) -> Sequence[TransferEdit]:
        """Filed transfer edits, oldest first, each marked ``overdue`` when still pending
        :data:`APPLY_DEADLINE` after filing (``overdue_only``: just those)."""
        authorize(actor.role, Action.APPLICATION_LIST)
        now = self.ctx.now()
        stmt = sa.select(s.transfers).order_by(s.transfers.c.received_at)
        if late_only:
            stmt = stmt.where(s.transfers.c.late.is_(True))
        if pending_only or overdue_only:
            stmt = stmt.where(s.transfers.c.status == "pending")
        if overdue_only:
            stmt = stmt.where(s.transfers.c.received_at < now - APPLY_DEADLINE)
        with self.ctx.tx() as conn:
            return [_transfer(r, now) for r in conn.execute(stmt).all()]

    def apply_transfer(self, actor: Actor, transfer_id: str) -> UserRecord:
        """The operator applies a filed edit at once (§8): the user's unit and post change."""
        authorize(actor.role, Action.TRANSFER_APPLY)
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            row = conn.execute(
                sa.select(s.transfers).where(s.transfers.c.id == transfer_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no transfer edit {transfer_id!r}")
            if row.status != "pending":
                raise InvalidState(f"transfer edit {transfer_id} is {row.status} already")
            done = conn.execute(s.transfers.update().where(
                s.transfers.c.id == transfer_id, s.transfers.c.status == "pending").values(
                status="applied", applied_at=now, applied_by=actor.user_id))
            if done.rowcount != 1:
                raise InvalidState(f"transfer edit {transfer_id} was applied concurrently")
            conn.execute(cp.users.update().where(cp.users.c.user_id == row.user_id).values(
                unit=row.unit, post=row.post, updated_at=now))
            self.ctx.record("ops.transfer.applied", actor.user_id, "success",
                            {"transfer_id": transfer_id, "user_id": row.user_id,
                             "late": bool(row.late)})
            user = conn.execute(
                sa.select(cp.users).where(cp.users.c.user_id == row.user_id)).one()
        return user_from_row(user)

    # --- blocking (R4, R13) ----------------------------------------------------------
    def _block(
        self, conn: Connection, actor_id: str, user_id: str, kind: BlockKind, reason: str,
        *, alert_id: int | None = None, found_by_operator: bool = False,
    ) -> UserRecord:
        now = self.ctx.now()
        if not set_status(conn, user_id, UserStatus.BLOCKED.value, reason, now=now,
                          block_kind=kind.value):
            raise NotFound(f"no user {user_id!r}")
        to_prosecutor = kind is BlockKind.VIOLATION and found_by_operator
        if kind is BlockKind.VIOLATION:
            notice = {"created_at": now, "user_id": user_id, "kind": "violation_block",
                      "reason": reason, "alert_id": alert_id}
            conn.execute(s.outbox.insert().values(**notice))
            if to_prosecutor:  # §23 (module docstring)
                conn.execute(s.prosecutor_outbox.insert().values(**notice))
        self.ctx.record(
            "ops.user.blocked", actor_id, "success",
            {"user_id": user_id, "kind": kind.value, "reason": reason,
             **({"alert_id": alert_id} if alert_id is not None else {}),
             **({"notified": ["agency", "prosecutor"]} if to_prosecutor else {})},
        )
        fresh = conn.execute(sa.select(cp.users).where(cp.users.c.user_id == user_id)).one()
        return user_from_row(fresh)

    def block(self, actor: Actor, user_id: str, kind: BlockKind | str, reason: str) -> UserRecord:
        """Block at once with a reason; a violation also notifies the agency (outbox)."""
        authorize(actor.role, Action.USER_BLOCK)
        try:
            kind = BlockKind(kind)
        except ValueError:
            raise InvalidDocument(
                f"unknown block kind {kind!r}; one of {', '.join(k.value for k in BlockKind)}"
            ) from None
        reason = reason.strip()
        if not reason:
            raise InvalidDocument("blocking needs a reason")
        with self.ctx.tx() as conn:
            check_status_change(conn, actor, user_id, block=True)
            return self._block(conn, actor.user_id, user_id, kind, reason[:1000],
                               found_by_operator=str(actor.role) == Role.OPERATOR.value)

    def block_by_rule(self, user_id: str, rule: str, reason: str, *, alert_id: int) -> bool:
        """Block for a violation found by a blocking rule; False if unknown or blocked."""
        with self.ctx.tx() as conn:
            status = conn.execute(
                sa.select(cp.users.c.status).where(cp.users.c.user_id == user_id)
            ).scalar()
            if status is None or status != UserStatus.ACTIVE.value:
                return False
            self._block(conn, f"system:rules/{rule}", user_id, BlockKind.VIOLATION,
                        reason[:1000], alert_id=alert_id, found_by_operator=True)
        return True

    def unblock(self, actor: Actor, user_id: str, reason: str) -> UserRecord:
        """Lift a block (the operator; the security officer within UNBLOCK_TARGETS)."""
        authorize(actor.role, Action.USER_UNBLOCK)
        reason = reason.strip()
        if not reason:
            raise InvalidDocument("unblocking needs a reason")
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            row = check_status_change(conn, actor, user_id, block=False)
            if row.status == UserStatus.ACTIVE.value:
                raise InvalidState(f"user {user_id} is not blocked")
            set_status(conn, user_id, UserStatus.ACTIVE.value, reason[:1000], now=now)
            self.ctx.record("ops.user.unblocked", actor.user_id, "success",
                            {"user_id": user_id, "reason": reason})
            fresh = conn.execute(sa.select(cp.users).where(cp.users.c.user_id == user_id)).one()
        return user_from_row(fresh)

    # --- the agency outbox (R13) and the prosecutor's (§23) -------------------------
    @staticmethod
    def _outbox_of(actor: Actor) -> sa.Table:
        """The outbox ``actor`` reads: the prosecutor's own, else the agency's."""
        authorize(actor.role, Action.OUTBOX_READ)
        return s.prosecutor_outbox if str(actor.role) == Role.PROSECUTOR.value else s.outbox

    def outbox(self, actor: Actor, *, unread_only: bool = True) -> Sequence[Notification]:
        """The notices of the actor's outbox (the controller: the agency's; the
        prosecutor: the violations the operator found, §23)."""
        table = self._outbox_of(actor)
        stmt = sa.select(table).order_by(table.c.id)
        if unread_only:
            stmt = stmt.where(table.c.read_at.is_(None))
        with self.ctx.tx() as conn:
            return [_notice(r) for r in conn.execute(stmt).all()]

    def mark_read(self, actor: Actor, notification_id: int) -> Notification:
        table = self._outbox_of(actor)
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.id == notification_id, table.c.read_at.is_(None))
                .values(read_at=now, read_by=actor.user_id)
            )
            row = conn.execute(sa.select(table).where(table.c.id == notification_id)).first()
            if row is None:
                raise NotFound(f"no notification {notification_id}")
            if result.rowcount:
                self.ctx.record("ops.outbox.read", actor.user_id, "success",
                                {"notification_id": notification_id, "user_id": row.user_id,
                                 "outbox": table.name})
        return _notice(row)
