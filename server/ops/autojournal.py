"""The Journal of emergencies, kept by itself (§14, R10): failures the gateway sees.

The operator records emergencies by hand (:class:`~server.ops.journal.JournalService`);
these are the ones the gateway notices itself -- the audit log failing closed, a signer
failing, an upstream's circuit breaker opening -- and their recovery. Each is one row
of ``ops_emergencies`` like the operator's, ``recorded_by`` ``system:<component>``
(``system:audit_log``, ``system:signer``, ``system:upstream:<url>``), with the time of
onset, the cause, the measure (the gateway fails closed) and, once the component
recovers, the time resolved. One entry per outage: a component that fails again while
its entry is open adds nothing.

Why the database first and the audit log after, unlike every other change of the
operations domain (``server.ops.base``: the record inside the transaction, fail
closed)? The entry must not depend on the failed component: an audit log that failed
closed cannot take the record of its own failure, and refusing to journal the
emergency would lose exactly the fact §14 asks to keep. Nothing here is a person's
request that changes what anyone may do, only the observation of a failure, so the
rule of "record first" is kept in its spirit this way: the entry and the audit record
it owes are written in ONE database transaction (the entry's row and a row of
``ops_journal_pending`` holding the record); :meth:`AutoJournal.flush` then appends the
pending records to the audit log, oldest first, and deletes each once it is durable.
While the log is down the records wait in the database; the first flush after the log
works again (the same process's next poll, or the next start) writes them, each with the
time of the fact in its details. A flush that stops between appending and deleting
appends that record again on the next flush (at least once, never lost).
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
import uuid
from typing import Any

import sqlalchemy as sa

from server.ops import schema as s
from server.ops.base import OpsContext, utc_required
from server.ops.journal import Emergency, _emergency
from siogw_api.errors import SiogwError
from siogw_api.timeutil import astana_iso

#: ``recorded_by`` of the entries this module makes: ``system:<component>``.
SYSTEM_PREFIX = "system:"

#: What the gateway does while a component is down (the entry's "measures taken").
MEASURES = {
    "audit_log": "recorded automatically; the gateway fails closed: every call that must "
                 "be logged is refused until the audit log works again",
    "signer": "recorded automatically; signed answers cannot be produced: queries are "
              "refused until the signer works again",
    "upstream": "recorded automatically; the circuit breaker answers queries to this "
                "resource with UNAVAILABLE at once and tries the upstream again after its "
                "cool-down",
    "crl": "recorded automatically; certificates of this issuer are refused "
           "(CRL_UNAVAILABLE) until a current CRL is fetched from its distribution point",
}


def _actor(component: str) -> str:
    """``system:<component>``, within the 64 characters of ``recorded_by``."""
    return (SYSTEM_PREFIX + component)[:64]


def _measures(component: str) -> str:
    return MEASURES.get(component.split(":", 1)[0], "recorded automatically")


class AutoJournal:
    """See the module docstring. Thread-safe; every method blocks (database)."""

    def __init__(self, ctx: OpsContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()

    def _open_entry(self, conn: sa.Connection, component: str) -> Any:
        e = s.emergencies.c
        return conn.execute(sa.select(s.emergencies).where(
            e.recorded_by == _actor(component), e.resolved_at.is_(None),
        ).order_by(e.onset_at).limit(1)).first()

    def _pend(self, conn: sa.Connection, details: dict[str, Any]) -> None:
        conn.execute(s.journal_pending.insert().values(
            created_at=self.ctx.now(), event_type="emergency",
            actor=details.pop("_actor"),
            details_json=json.dumps(details, sort_keys=True, ensure_ascii=False)))

    def failed(self, component: str, cause: str, *,
               at: _dt.datetime | None = None) -> Emergency | None:
        """Record the onset of ``component``'s failure; ``None`` if its entry is open
        already. The audit record waits in the database until :meth:`flush`."""
        onset = utc_required(at) if at is not None else self.ctx.now()
        actor = _actor(component)
        causes = (cause.strip() or "failure")[:2000]
        with self._lock, self.ctx.tx() as conn:
            if self._open_entry(conn, component) is not None:
                return None
            entry_id = uuid.uuid4().hex[:12]
            conn.execute(s.emergencies.insert().values(
                id=entry_id, onset_at=onset, causes=causes, measures=_measures(component),
                resolved_at=None, recorded_by=actor, recorded_at=self.ctx.now()))
            self._pend(conn, {
                "_actor": actor, "emergency_id": entry_id, "action": "recorded",
                "automatic": True, "component": component, "onset_at": astana_iso(onset),
                "causes": causes, "measures": _measures(component), "resolved_at": None})
            row = conn.execute(sa.select(s.emergencies).where(
                s.emergencies.c.id == entry_id)).one()
        return _emergency(row)

    def recovered(self, component: str, *,
                  at: _dt.datetime | None = None) -> Emergency | None:
        """Resolve ``component``'s open entry (``None`` if none is open)."""
        resolved = utc_required(at) if at is not None else self.ctx.now()
        actor = _actor(component)
        with self._lock, self.ctx.tx() as conn:
            row = self._open_entry(conn, component)
            if row is None:
                return None
            resolved = max(resolved, utc_required(row.onset_at))
            measures = f"{row.measures}; recovered automatically"[:2000]
            conn.execute(s.emergencies.update().where(s.emergencies.c.id == row.id).values(
                resolved_at=resolved, measures=measures))
            self._pend(conn, {
                "_actor": actor, "emergency_id": row.id, "action": "resolved",
                "automatic": True, "component": component,
                "resolved_at": astana_iso(resolved), "measures": measures})
            fresh = conn.execute(sa.select(s.emergencies).where(
                s.emergencies.c.id == row.id)).one()
        return _emergency(fresh)

    def open_components(self) -> set[str]:
        """The components whose automatic entry is open."""
        e = s.emergencies.c
        with self.ctx.tx() as conn:
            names = conn.execute(sa.select(e.recorded_by).where(
                e.recorded_by.like(SYSTEM_PREFIX + "%"), e.resolved_at.is_(None))).scalars()
            return {n.removeprefix(SYSTEM_PREFIX) for n in names}

    def pending(self) -> int:
        """Audit records waiting for the log."""
        with self.ctx.tx() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(s.journal_pending)).scalar_one())

    def flush(self) -> int:
        """Append the waiting records to the audit log, oldest first; returns how many.
        Stops at the first the log refuses (they stay for the next flush)."""
        p = s.journal_pending.c
        done = 0
        with self._lock:
            with self.ctx.tx() as conn:
                rows = conn.execute(sa.select(s.journal_pending).order_by(p.id)).all()
            for row in rows:
                try:
                    self.ctx.record(row.event_type, row.actor, "success",
                                    json.loads(row.details_json))
                except SiogwError:
                    break
                with self.ctx.tx() as conn:
                    conn.execute(s.journal_pending.delete().where(p.id == row.id))
                done += 1
        return done
