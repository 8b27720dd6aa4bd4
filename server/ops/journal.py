"""Planned maintenance and the Journal of emergencies (R10, §14).

The operator publishes maintenance windows (start, end, what); clients read them
(``GetServiceStatus``), and during one the gateway answers queries with "unavailable
until ...". A window is one row of the control plane's ``maintenance`` table
(:mod:`server.store.maintenance`), the one the session check of every gateway process
reads: a published window is effective at once. The Journal of emergencies
(``ops_emergencies``) holds the time of onset, the causes, the measures taken and the
time resolved. Every entry is recorded in the audit log.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from server.ops import schema as s
from server.ops.base import OpsContext, utc, utc_required
from server.ops.errors import InvalidDocument, InvalidState, NotFound, NoticeTooShort
from server.ops.roles import Action, Actor, authorize
from server.store import schema as cp
from server.store.maintenance import NOT_CANCELLED, Cancellation, cancel_window, insert_window
from siogw_api.timeutil import astana_iso


@dataclass(frozen=True)
class Window:
    id: str
    starts_at: _dt.datetime
    ends_at: _dt.datetime
    what: str
    published_by: str
    #: Published with less than the notice period (§14).
    urgent: bool = False

    def covers(self, at: _dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def describe(self) -> str:
        return f"{astana_iso(self.starts_at)} .. {astana_iso(self.ends_at)}: {self.what}"


@dataclass(frozen=True)
class Emergency:
    id: str
    onset_at: _dt.datetime
    causes: str
    measures: str
    resolved_at: _dt.datetime | None
    recorded_by: str

    @property
    def open(self) -> bool:
        return self.resolved_at is None


def _window(row: sa.Row[tuple[object, ...]]) -> Window:
    m = row._mapping
    return Window(m["id"], utc_required(m["starts_at"]), utc_required(m["ends_at"]),
                  m["description"], m["published_by"], bool(m["urgent"]))


def _emergency(row: sa.Row[tuple[object, ...]]) -> Emergency:
    m = row._mapping
    return Emergency(m["id"], utc_required(m["onset_at"]), m["causes"], m["measures"],
                     utc(m["resolved_at"]), m["recorded_by"])


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidDocument(f"{what} is empty")
    if len(value) > limit:
        raise InvalidDocument(f"{what} is longer than {limit} characters")
    return value


#: The default notice period of a maintenance window (``limits.maintenance_notice_hours``).
DEFAULT_NOTICE = _dt.timedelta(hours=24)


def _hours(span: _dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


class JournalService:
    """See the module docstring.

    ``notice``: how long before its start a window must be published unless it is marked
    urgent (§14: planned work is announced beforehand; ``limits.maintenance_notice_hours``).
    """

    def __init__(self, ctx: OpsContext, *, notice: _dt.timedelta = DEFAULT_NOTICE) -> None:
        self.ctx = ctx
        self.notice = notice

    # --- maintenance -----------------------------------------------------------------
    def publish_window(self, actor: Actor, starts_at: _dt.datetime, ends_at: _dt.datetime,
                       what: str, *, window_id: str | None = None,
                       urgent: bool = False) -> Window:
        """Publish a window (``window_id`` given by the client, or generated).

        A window starting sooner than :attr:`notice` from now is refused
        (:class:`~server.ops.errors.NoticeTooShort`, naming the period) unless ``urgent``.
        """
        authorize(actor.role, Action.MAINTENANCE_PUBLISH)
        starts, ends = utc_required(starts_at), utc_required(ends_at)
        if ends <= starts:
            raise InvalidDocument("a maintenance window must end after it starts")
        wid = (window_id or "").strip() or uuid.uuid4().hex[:12]
        if len(wid) > 40:
            raise InvalidDocument("a maintenance window id is at most 40 characters")
        text = _text(what, "what", 1000)
        now = self.ctx.now()
        if not urgent and starts < now + self.notice:
            raise NoticeTooShort(
                f"maintenance must be published at least {_hours(self.notice)} before it "
                f"starts (§14); this window starts at {astana_iso(starts)}: publish it for "
                f"{astana_iso(now + self.notice)} or later, or mark it urgent")
        window = Window(wid, starts, ends, text, actor.user_id, bool(urgent))
        with self.ctx.tx() as conn:
            insert_window(conn, window_id=window.id, starts_at=starts, ends_at=ends,
                          description=window.what, published_by=actor.user_id,
                          now=now, urgent=window.urgent)
            self.ctx.record("ops.maintenance.published", actor.user_id, "success",
                            {"window_id": window.id, "starts_at": astana_iso(starts),
                             "ends_at": astana_iso(ends), "what": window.what,
                             "urgent": window.urgent})
        return window

    def windows(self, *, not_ended_before: _dt.datetime | None = None) -> Sequence[Window]:
        """Published windows by start; public (clients read them without a role)."""
        stmt = (sa.select(cp.maintenance).where(NOT_CANCELLED)
                .order_by(cp.maintenance.c.starts_at))
        if not_ended_before is not None:
            stmt = stmt.where(cp.maintenance.c.ends_at > utc_required(not_ended_before))
        with self.ctx.tx() as conn:
            return [_window(r) for r in conn.execute(stmt).all()]

    def cancel_window(self, actor: Actor, window_id: str, reason: str) -> Cancellation:
        """Cancel a published window that has not ended (recorded in the transaction)."""
        authorize(actor.role, Action.MAINTENANCE_PUBLISH)
        with self.ctx.tx() as conn:
            done = cancel_window(conn, window_id=window_id, cancelled_by=actor.user_id,
                                 reason=_text(reason, "reason", 2000), now=self.ctx.now())
            self.ctx.record("ops.maintenance.cancelled", actor.user_id, "success",
                            {"window_id": done.id, "starts_at": astana_iso(done.starts_at),
                             "ends_at": astana_iso(done.ends_at), "reason": done.reason})
        return done

    def current_window(self, at: _dt.datetime | None = None) -> Window | None:
        when = utc_required(at) if at is not None else self.ctx.now()
        for window in self.windows(not_ended_before=when):
            if window.covers(when):
                return window
        return None

    # --- the Journal of emergencies --------------------------------------------------
    def record_emergency(
        self, actor: Actor, *, onset_at: _dt.datetime, causes: str, measures: str,
        resolved_at: _dt.datetime | None = None,
    ) -> Emergency:
        authorize(actor.role, Action.EMERGENCY_RECORD)
        onset = utc_required(onset_at)
        resolved = utc_required(resolved_at) if resolved_at is not None else None
        if resolved is not None and resolved < onset:
            raise InvalidDocument("an emergency cannot be resolved before its onset")
        item = Emergency(uuid.uuid4().hex[:12], onset, _text(causes, "causes", 2000),
                         _text(measures, "measures", 2000), resolved, actor.user_id)
        with self.ctx.tx() as conn:
            conn.execute(s.emergencies.insert().values(
                id=item.id, onset_at=onset, causes=item.causes, measures=item.measures,
                resolved_at=resolved, recorded_by=actor.user_id, recorded_at=self.ctx.now()))
            self.ctx.record("emergency", actor.user_id, "success", {
                "emergency_id": item.id, "action": "recorded", "onset_at": astana_iso(onset),
                "causes": item.causes, "measures": item.measures,
                "resolved_at": astana_iso(resolved) if resolved else None})
        return item

    def resolve_emergency(self, actor: Actor, emergency_id: str, *, resolved_at: _dt.datetime,
                          measures: str | None = None) -> Emergency:
        authorize(actor.role, Action.EMERGENCY_RECORD)
        resolved = utc_required(resolved_at)
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(s.emergencies).where(
                s.emergencies.c.id == emergency_id)).first()
            if row is None:
                raise NotFound(f"no emergency {emergency_id!r}")
            if row.resolved_at is not None:
                raise InvalidState(f"emergency {emergency_id} is resolved already")
            if resolved < utc_required(row.onset_at):
                raise InvalidDocument("an emergency cannot be resolved before its onset")
            new_measures = (_text(measures, "measures", 2000) if measures is not None
                            else row.measures)
            conn.execute(s.emergencies.update().where(s.emergencies.c.id == emergency_id)
                         .values(resolved_at=resolved, measures=new_measures))
            self.ctx.record("emergency", actor.user_id, "success", {
                "emergency_id": emergency_id, "action": "resolved",
                "resolved_at": astana_iso(resolved), "measures": new_measures})
            row = conn.execute(sa.select(s.emergencies).where(
                s.emergencies.c.id == emergency_id)).one()
        return _emergency(row)

    def public_emergencies(self, *, not_resolved_before: _dt.datetime) -> Sequence[Emergency]:
        """Emergencies open now or resolved after ``not_resolved_before``: what clients
        are shown next to the maintenance windows (R10). No role is needed."""
        cutoff = utc_required(not_resolved_before)
        stmt = sa.select(s.emergencies).where(sa.or_(
            s.emergencies.c.resolved_at.is_(None), s.emergencies.c.resolved_at > cutoff,
        )).order_by(s.emergencies.c.onset_at)
        with self.ctx.tx() as conn:
            return [_emergency(r) for r in conn.execute(stmt).all()]

    def emergencies(self, actor: Actor, *, open_only: bool = False) -> Sequence[Emergency]:
        authorize(actor.role, Action.EMERGENCY_READ)
        stmt = sa.select(s.emergencies).order_by(s.emergencies.c.onset_at)
        if open_only:
            stmt = stmt.where(s.emergencies.c.resolved_at.is_(None))
        with self.ctx.tx() as conn:
            return [_emergency(r) for r in conn.execute(stmt).all()]
