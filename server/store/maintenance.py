"""Maintenance windows (R10): one ``maintenance`` row each, published by ``siogw admin``,
the PublishMaintenance command or the operations domain (:mod:`server.ops.journal`,
which calls :func:`insert_window`). During one, queries are answered "unavailable
until ..."; the session read brings the open window (:mod:`server.store.sessions`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from server.store.base import StoreBase
from server.store.errors import UnknownWindow, WindowNotCancellable
from server.store.schema import maintenance, maintenance_cancellations
from siogw_api.errors import InputError
from siogw_api.timeutil import ensure_utc, now_utc


@dataclass(frozen=True)
class WindowRow:
    id: str
    starts_at: _dt.datetime
    ends_at: _dt.datetime
    description: str
    #: Published with less than the notice period (§14; part "rules").
    urgent: bool = False

    def covers(self, at: _dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at


#: A window not cancelled (``maintenance_cancellations``): only those are announced and
#: close the gateway.
NOT_CANCELLED = ~sa.exists().where(maintenance_cancellations.c.window_id == maintenance.c.id)


def open_window(column: Any) -> Any:
    """``column`` of the window open at the bind parameter ``at`` (earliest start first),
    as a scalar subquery."""
    at = sa.bindparam("at", type_=sa.DateTime(timezone=True))
    return (
        sa.select(column)
        .where(maintenance.c.starts_at <= at, maintenance.c.ends_at > at, NOT_CANCELLED)
        .order_by(maintenance.c.starts_at, maintenance.c.id)
        .limit(1)
        .scalar_subquery()
    )


_OPEN_WINDOW = (
    sa.select(maintenance)
    .where(
        maintenance.c.starts_at <= sa.bindparam("at", type_=sa.DateTime(timezone=True)),
        maintenance.c.ends_at > sa.bindparam("at", type_=sa.DateTime(timezone=True)),
        NOT_CANCELLED,
    )
    .order_by(maintenance.c.starts_at, maintenance.c.id)
    .limit(1)
)


def insert_window(
    conn: Connection, *, window_id: str, starts_at: _dt.datetime, ends_at: _dt.datetime,
    description: str, now: _dt.datetime, published_by: str = "", urgent: bool = False,
) -> None:
    """Insert a window in ``conn``'s transaction (IntegrityError if the id is taken)."""
    conn.execute(
        maintenance.insert().values(
            id=window_id, starts_at=starts_at, ends_at=ends_at, description=description,
            created_at=now, published_by=published_by, urgent=urgent,
        )
    )


@dataclass(frozen=True)
class Cancellation:
    """A cancelled window: the window as published, and who cancelled it, when and why."""

    id: str
    starts_at: _dt.datetime
    ends_at: _dt.datetime
    description: str
    published_by: str
    cancelled_at: _dt.datetime
    cancelled_by: str
    reason: str


#: The longest reason a cancellation keeps, and the longest window id (the columns' sizes).
MAX_CANCEL_REASON = 2000
MAX_WINDOW_ID = 64


def cancel_window(
    conn: Connection, *, window_id: str, cancelled_by: str, reason: str, now: _dt.datetime
) -> Cancellation:
    """Cancel a window that has not ended, in ``conn``'s transaction.

    :class:`UnknownWindow` for an unknown window; :class:`WindowNotCancellable` for one cancelled
    already or ended.
    """
    reason = reason.strip()
    if not reason:
        raise InputError("a cancellation needs a reason")
    if len(reason) > MAX_CANCEL_REASON:
        raise InputError(f"a cancellation's reason is at most {MAX_CANCEL_REASON} characters")
    if len(window_id) > MAX_WINDOW_ID:  # no such window can exist
        raise UnknownWindow("no maintenance window with this id")
    row = conn.execute(
        sa.select(maintenance).where(maintenance.c.id == window_id).with_for_update()
    ).first()
    if row is None:
        raise UnknownWindow(f"no maintenance window {window_id!r}")
    done = conn.execute(sa.select(maintenance_cancellations.c.window_id).where(
        maintenance_cancellations.c.window_id == window_id)).first()
    if done is not None:
        raise WindowNotCancellable(f"maintenance window {window_id} is cancelled already")
    if ensure_utc(row.ends_at) <= now:
        raise WindowNotCancellable(
            f"maintenance window {window_id} has ended; it cannot be cancelled")
    conn.execute(maintenance_cancellations.insert().values(
        window_id=window_id, cancelled_at=now, cancelled_by=cancelled_by, reason=reason))
    return Cancellation(
        row.id, ensure_utc(row.starts_at), ensure_utc(row.ends_at), row.description,
        row.published_by or "", now, cancelled_by, reason)


class MaintenanceStore(StoreBase):
    """The maintenance methods of :class:`server.store.Store`."""

    def add_window(
        self, *, window_id: str, starts_at: _dt.datetime, ends_at: _dt.datetime, description: str
    ) -> WindowRow:
        starts, ends = ensure_utc(starts_at), ensure_utc(ends_at)
        if ends <= starts:
            raise InputError("a maintenance window must end after it starts")
        try:
            with self._tx() as conn:
                insert_window(conn, window_id=window_id, starts_at=starts, ends_at=ends,
                              description=description, now=now_utc())
        except IntegrityError as exc:
            raise InputError(f"maintenance window {window_id!r} exists already") from exc
        return WindowRow(window_id, starts, ends, description)

    def windows(self, *, not_ended_before: _dt.datetime | None = None) -> list[WindowRow]:
        """Maintenance windows ordered by start; only those still open at the given time."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(maintenance).where(NOT_CANCELLED).order_by(maintenance.c.starts_at)
            ).all()
        out = [
            WindowRow(r.id, ensure_utc(r.starts_at), ensure_utc(r.ends_at), r.description,
                      bool(r.urgent))
            for r in rows
        ]
        if not_ended_before is not None:
            out = [w for w in out if w.ends_at > not_ended_before]
        return out

    def cancel_window(self, window_id: str, *, cancelled_by: str, reason: str) -> Cancellation:
        """Cancel a window that has not ended (see :func:`cancel_window`)."""
        with self._tx() as conn:
            return cancel_window(conn, window_id=window_id, cancelled_by=cancelled_by,
                                 reason=reason, now=now_utc())

    def current_window(self, at: _dt.datetime | None = None) -> WindowRow | None:
        """The window open at ``at`` (default now), earliest start first; one row read."""
        when = ensure_utc(at) if at is not None else now_utc()
        with self._tx() as conn:
            r = conn.execute(_OPEN_WINDOW, {"at": when}).first()
        if r is None:
            return None
        return WindowRow(r.id, ensure_utc(r.starts_at), ensure_utc(r.ends_at), r.description)
