"""Users and their status: the one ``users`` table (see :mod:`server.store.schema`).

Blocking ends the user's live sessions in the same transaction (R4), whoever blocks:
:meth:`UserStore.set_user_status` (``siogw admin``, EnrollUser's store path) and the
operations domain (:mod:`server.ops.lifecycle`) both call :func:`set_status`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from server.store.base import StoreBase
from server.store.errors import DuplicateUser, UnknownUser
from server.store.schema import sessions, users
from siogw_api.errors import InputError
from siogw_api.timeutil import now_utc

USER_ACTIVE = "active"
USER_BLOCKED = "blocked"


@dataclass(frozen=True)
class UserRow:
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    status: str
    status_reason: str
    device_public_key_der: bytes | None

    @property
    def active(self) -> bool:
        return self.status == USER_ACTIVE


def set_status(
    conn: Connection, user_id: str, status: str, reason: str, *, now: _dt.datetime,
    block_kind: str | None = None,
) -> bool:
    """Set a user's status in ``conn``'s transaction; a block also ends the user's live
    sessions. False when there is no such user."""
    result = conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(status=status, status_reason=reason, block_kind=block_kind, updated_at=now)
    )
    if result.rowcount == 0:
        return False
    if status != USER_ACTIVE:
        conn.execute(
            sessions.update()
            .where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
            .values(ended_at=now)
        )
    return True


class UserStore(StoreBase):
    """The users methods of :class:`server.store.Store`."""

    def add_user(
        self,
        *,
        user_id: str,
        full_name: str,
        role: str,
        unit: str = "",
        post: str = "",
        phone: str = "",
        device_public_key_der: bytes | None = None,
        also: Callable[[Connection], object] | None = None,
    ) -> UserRow:
        """Insert an active user. ``also`` writes what belongs to the user from the start
        (a compliance officer's provider) in the same transaction: both rows or neither."""
        if not user_id:
            raise InputError("user id is empty")
        now = now_utc()
        try:
            with self._tx() as conn:
                conn.execute(
                    users.insert().values(
                        user_id=user_id, full_name=full_name, role=role, unit=unit, post=post,
                        phone=phone, status=USER_ACTIVE, status_reason="",
                        device_public_key_der=device_public_key_der,
                        created_at=now, updated_at=now,
                    )
                )
                if also is not None:
                    also(conn)
        except IntegrityError as exc:
            raise DuplicateUser(f"user {user_id!r} exists already") from exc
        return self.require_user(user_id)

    def get_user(self, user_id: str) -> UserRow | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
        if row is None:
            return None
        return UserRow(
            user_id=row.user_id, full_name=row.full_name, role=row.role, unit=row.unit,
            post=row.post, phone=row.phone, status=row.status, status_reason=row.status_reason,
            device_public_key_der=row.device_public_key_der,
        )

    def require_user(self, user_id: str) -> UserRow:
        user = self.get_user(user_id)
        if user is None:
            raise UnknownUser(f"no user {user_id!r}")
        return user

    def set_user_status(
        self,
        user_id: str,
        status: str,
        reason: str = "",
        *,
        guard: Callable[[Connection], object] | None = None,
    ) -> UserRow:
        """Block or unblock; blocking also ends the user's live sessions at once (R4).

        ``guard`` runs first in the same transaction and refuses by raising (the rules of
        who may block whom: :func:`server.ops.lifecycle.check_status_change`).
        """
        if status not in (USER_ACTIVE, USER_BLOCKED):
            raise InputError(f"unknown user status {status!r}")
        with self._tx() as conn:
            if guard is not None:
                guard(conn)
            if not set_status(conn, user_id, status, reason, now=now_utc()):
                raise UnknownUser(f"no user {user_id!r}")
        return self.require_user(user_id)

    def set_device_key(self, user_id: str, device_public_key_der: bytes | None) -> None:
        with self._tx() as conn:
            conn.execute(
                users.update().where(users.c.user_id == user_id).values(
                    device_public_key_der=device_public_key_der, updated_at=now_utc()
                )
            )
