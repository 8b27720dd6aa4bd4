"""Background work on the control-plane database: SQLite WAL checkpoints and the
deletion of rows no check needs any more (:meth:`Housekeeping.prune`), each in a
daemon thread of :func:`periodic`. ``Store.close`` stops them."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from server.store.base import StoreBase
from server.store.schema import logins, seen_requests, sessions
from siogw_api.timeutil import ensure_utc, now_utc

log = logging.getLogger("siogw.store")


def periodic(
    name: str, interval: float, job: Callable[[], None], *, first_now: bool
) -> tuple[threading.Event, threading.Thread]:
    """Run ``job`` every ``interval`` seconds (and at once with ``first_now``) in a daemon
    thread ``name`` until the returned event is set. A job that raises is logged and
    runs again at the next tick."""
    stop = threading.Event()

    def run() -> None:
        if first_now or not stop.wait(interval):
            while True:
                try:
                    job()
                except Exception as exc:
                    log.warning("%s failed: %s", name, exc)
                if stop.wait(interval):
                    return

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return stop, thread


#: How long :meth:`Housekeeping.prune` keeps rows no check needs any more (at least).
KEEP_AT_LEAST = _dt.timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    """Rows one :meth:`Housekeeping.prune` deleted."""

    request_ids: int
    sessions: int
    logins: int

    @property
    def total(self) -> int:
        return self.request_ids + self.sessions + self.logins

    def __str__(self) -> str:
        return (f"{self.request_ids} request id(s), {self.sessions} session(s), "
                f"{self.logins} login attempt(s)")


class Housekeeping(StoreBase):
    """The background-thread methods of :class:`server.store.Store`."""

    _checkpointer: tuple[threading.Event, threading.Thread] | None = None
    _housekeeper: tuple[threading.Event, threading.Thread] | None = None
    #: Background WAL checkpoints done (:meth:`start_checkpointer`).
    checkpoints = 0
    #: Housekeeping passes done (:meth:`start_housekeeper`).
    housekeeping_passes = 0

    def start_checkpointer(self, interval: float = 1.0) -> bool:
        """SQLite: checkpoint the WAL every ``interval`` seconds in a background thread.

        ``PRAGMA wal_checkpoint(PASSIVE)`` copies what it can without waiting for any
        lock, so writers never wait on it; its fsyncs happen here instead of inside a
        commit on the query path. Returns False (nothing started) for other databases.
        Stopped by ``Store.close``.
        """
        if self.engine.dialect.name != "sqlite" or self._checkpointer is not None:
            return False

        def checkpoint() -> None:
            conn = self.engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cur.fetchall()
                cur.close()
            finally:
                conn.close()
            self.checkpoints += 1

        # a failure is logged; SQLite's own (raised) threshold is the safety net
        self._checkpointer = periodic("siogw-wal-checkpoint", interval, checkpoint,
                                      first_now=False)
        return True

    def prune(
        self, *, clock_skew_seconds: int, now: _dt.datetime | None = None,
        keep: _dt.timedelta = KEEP_AT_LEAST, chunk: int = 5000,
    ) -> Pruned:
        """Delete the rows no check can need any more; the audit log keeps their story.

        * request ids claimed longer ago than ``max(keep, 2 x skew + 60 s)``: a request
          is fresh only within ``± skew`` of the gateway clock, so by then any replay of
          it is refused as stale before the replay guard is asked. ``keep`` (a day by
          default) also covers the skew being raised later, up to about 12 hours;
        * sessions and login attempts that expired more than ``keep`` ago (a session lives
          minutes; one ended early expired no later).

        Deletes go in chunks of ``chunk`` rows, one short transaction each, so the first
        pass over a large old database never holds the write lock long.
        """
        now = ensure_utc(now) if now is not None else now_utc()
        horizon = max(keep, _dt.timedelta(seconds=2 * clock_skew_seconds + 60))
        return Pruned(
            request_ids=self._delete_chunked(
                seen_requests, seen_requests.c.request_id,
                seen_requests.c.seen_at < now - horizon, chunk),
            sessions=self._delete_chunked(
                sessions, sessions.c.token_hash, sessions.c.expires_at < now - keep, chunk),
            logins=self._delete_chunked(
                logins, logins.c.login_id, logins.c.expires_at < now - keep, chunk),
        )

    def _delete_chunked(self, table: sa.Table, key: Any, old: Any, chunk: int) -> int:
        total = 0
        while True:
            batch = sa.select(key).where(old).limit(chunk).scalar_subquery()
            with self._write_lock, self._tx() as conn:
                n = conn.execute(table.delete().where(key.in_(batch))).rowcount or 0
            total += n
            if n < chunk:
                return total

    def start_housekeeper(self, *, clock_skew_seconds: int, interval: float) -> bool:
        """Run :meth:`prune` now and every ``interval`` seconds in a background thread
        (one per database is enough; more do no harm). False when ``interval`` is not
        positive (housekeeping off) or it runs already. Stopped by ``Store.close``.
        """
        if interval <= 0 or self._housekeeper is not None:
            return False

        def housekeeping() -> None:
            pruned = self.prune(clock_skew_seconds=clock_skew_seconds)
            self.housekeeping_passes += 1
            if pruned.total:
                log.info("housekeeping: deleted %s", pruned)

        # a failed pass is logged; the next one tries again
        self._housekeeper = periodic("siogw-housekeeping", interval, housekeeping,
                                     first_now=True)
        return True

    def stop_background(self) -> None:
        """Stop the threads :meth:`start_checkpointer` / :meth:`start_housekeeper` started."""
        for attr in ("_checkpointer", "_housekeeper"):
            running: tuple[threading.Event, threading.Thread] | None = getattr(self, attr)
            if running is not None:
                stop, thread = running
                stop.set()
                thread.join(10)
                setattr(self, attr, None)
