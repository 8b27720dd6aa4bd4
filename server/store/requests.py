"""The replay guard (R7): every signed request id is claimed once, durably.

The claim is the one write of every query (a prepared statement, :mod:`server.prepared`);
:meth:`RequestStore.restore_request_ids` puts back claims a power loss took from the
database, from the audit log (``server.ops_wiring.OpsWiring.restore_replay_guard``).
:meth:`RequestStore.release_request_id` gives a claim back when its request was refused
before anything was disclosed (the upstream is down): the client may resend the same
signed envelope (issue 14, finding 6); the refusal record says ``request_released`` so
that the rebuild from the log does not claim the id again.
Old request ids are deleted by housekeeping (:mod:`server.store.housekeeping`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from server.prepared import Prepared
from server.store.base import StoreBase, set_synchronous
from server.store.errors import ReplayDetected, StoreUnavailable
from server.store.schema import seen_requests
from siogw_api.timeutil import ensure_utc, now_utc

_CLAIM = seen_requests.insert()


class RequestStore(StoreBase):
    """The replay-guard methods of :class:`server.store.Store`."""

    _prepared_claim: Prepared | None = None

    def claim_request_id(self, request_id: str, *, user_id: str, kind: str) -> None:
        """Record a request id; :class:`ReplayDetected` if it was seen before (durable)."""
        # The write of every query: a prepared statement (server.prepared).
        prepared = self._prepared("_prepared_claim", _CLAIM)
        dbapi = self.engine.dialect.dbapi
        try:
            with self._write_lock, self.pinned_connection():
                conn = self._pinned
                if self._sqlite:
                    # NORMAL, not FULL: a claim lost to a power loss is claimed again
                    # from the audit log at start (docs/adr/0005-gateway.md §3).
                    set_synchronous(conn.dbapi_connection, conn.info, "NORMAL")
                prepared.run({"request_id": request_id, "user_id": user_id, "kind": kind,
                              "seen_at": now_utc()}, conn=conn)
        except dbapi.IntegrityError as exc:  # type: ignore[union-attr]
            raise ReplayDetected(f"request id {request_id!r} was used before") from exc
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc

    def release_request_id(self, request_id: str, *, user_id: str) -> bool:
        """Give back the claim of ``request_id`` made by ``user_id``; whether one was there.

        Only for a request refused before anything was disclosed (see the module
        docstring); the caller records the release in the refusal record.
        """
        try:
            with self._write_lock, self._tx() as conn:
                done = conn.execute(
                    seen_requests.delete()
                    .where(seen_requests.c.request_id == request_id)
                    .where(seen_requests.c.user_id == user_id)
                )
                return bool(done.rowcount)
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc

    def restore_request_ids(self, claims: Iterable[tuple[str, str, str, _dt.datetime]]) -> int:
        """Claim again request ids the audit log shows as claimed; returns how many were
        missing (and are now back).

        ``claims`` are ``(request_id, user_id, kind, seen_at)``. With SQLite in WAL mode
        and ``synchronous=NORMAL`` a power loss can lose the last commits, claims among
        them; the audit log, fsync'd before every answer, still has them (see
        :meth:`server.ops_wiring.OpsWiring.restore_replay_guard`). Ids present already are
        left alone.
        """
        restored = 0
        batch: list[tuple[str, str, str, _dt.datetime]] = []

        def flush() -> int:
            wanted = {c[0]: c for c in batch}
            with self._tx() as conn:
                have = set(conn.execute(
                    sa.select(seen_requests.c.request_id)
                    .where(seen_requests.c.request_id.in_(list(wanted)))
                ).scalars())
                rows = [
                    {"request_id": rid, "user_id": uid, "kind": kind, "seen_at": ensure_utc(at)}
                    for rid, (_r, uid, kind, at) in wanted.items() if rid not in have
                ]
                if rows:
                    conn.execute(seen_requests.insert(), rows)
            batch.clear()
            return len(rows)

        try:
            with self._write_lock:
                for claim in claims:
                    batch.append(claim)
                    if len(batch) >= 500:
                        restored += flush()
                if batch:
                    restored += flush()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        return restored
