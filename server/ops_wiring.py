"""Wiring the operations domain (``server.ops``, issue 5) into a gateway.

:func:`open_operations` builds it; the composition root (:mod:`server.assembly`) calls it
once, before any call is served, and keeps the result in ``Gateway.ops_wiring``::

    wiring = open_operations(store, trust, audit_log, clock_skew_seconds=120)
    sink = ObservedSink(AuditLogSink(audit_log), observers=(wiring.observe,))

It

* builds :class:`server.ops.Operations` over the gateway's own database engine (tables
  ``ops_*``), recording into the gateway's ``audit.AuditLog`` (fail closed), with the
  gateway's trust store and an audit index (``ops_audit_records``) in the same database;
* shares the gateway's own tables for users, certificates and maintenance windows (one
  home for each fact, migration 3): a block or revocation made here ends live sessions in
  its own transaction and is seen by the next call in every process;
* makes the replay guard whole from the log (:meth:`OpsWiring.restore_replay_guard`) and
  rebuilds the rules' windows from the log's recent records
  (:meth:`OpsWiring.replay_recent`, on the rules thread).

:meth:`OpsWiring.observe` is the observer the root passes to the gateway's audit sink:
every record the sink writes (refusals from the interceptor and records of the workers
included) goes to the violation rules (``ops.rules``), in order, on one background thread
that takes them in batches (one wake-up and one user lookup per user per batch, not per
record), so the hot path never waits for the rules; :meth:`OpsWiring.settle` waits for
what is queued (reports call it, tests too). :meth:`OpsWiring.catch_up` keeps the audit
index current: it appends the records the log holds beyond the index's last ``seq``
(Reports and the prosecutor's reads call it first, and so does the receipt lookup of a
replay), and on its first call (and after a failure) reconciles the index with the log
first, adding any seq missing below the top (``AuditIndex.heal``). It reads only the
durable part of the live segment (``AuditLog.durable_extent``: never a tail written
but not yet fsync'd), and only the bytes appended since the last catch-up.

A failure here (no trust anchors, an unusable database) is raised to the root, which
stops the start-up with it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from audit import AuditLog
from audit.archive import iter_archive_records, iter_live_records
from audit.index import AuditIndex, durable_records
from server.certcheck import TrustMaterial
from server.ops import AuditIndexQueries, Operations, audit_log_recorder
from server.store import Store
from siogw_api.errors import StorageError

log = logging.getLogger("siogw.server.ops")

#: The audit index table prefix (``ops_audit_records`` in the gateway's database).
INDEX_PREFIX = "ops_"


@dataclass
class OpsWiring:
    """What :func:`open_operations` set up; ``Gateway.ops_wiring``."""

    ops: Operations
    index: AuditIndex
    log_dir: Path  # the audit log's directory
    #: The running log's ``durable_extent``: the index reads no further (issue 14).
    durable: Callable[[], tuple[int, int]] | None = None
    rules_feed: RulesFeed | None = None
    _index_lock: threading.Lock = field(default_factory=threading.Lock)
    _last_seq: int | None = None
    #: ``(live segment number, byte length)`` indexed completely so far: the next
    #: catch-up reads only the bytes appended since, not the whole live segment again.
    _indexed_to: tuple[int, int] | None = None

    # -- the audit index -------------------------------------------------------------------
    def catch_up(self) -> int:
        """Index the log's records beyond the index's last seq; returns how many.

        The first call (and the one after a failure) heals the index first: seqs missing
        below its top are read from the log and added (counted in the result).

        Only a gap-free run of records after the last indexed seq is added (a segment
        sealed while the directory was read can hide records for a moment: read again).
        """
        with self._index_lock:
            try:
                return self._catch_up_locked()
            except StorageError:  # e.g. another process indexed the same rows: re-read
                self._last_seq = None
                self._indexed_to = None
                return self._catch_up_locked()

    def _fresh(self, last: int, extent: tuple[int, int] | None) -> list[tuple[bytes, Any]]:
        """The log's durable records after seq ``last``, in seq order: from where the
        last catch-up stopped in the same live segment, else from the archive (every
        segment that may hold records after ``last``)."""
        done = self._indexed_to
        if extent is not None and done is not None and done[0] == extent[0]:
            try:
                return iter_live_records(self.log_dir, extent[0], done[1], extent[1])
            except OSError:  # sealed meanwhile: read the archive
                self._indexed_to = None
        fixed = (lambda: extent) if extent is not None else None
        return sorted(((body, rec) for body, rec
                       in durable_records(self.log_dir, after_seq=last, durable=fixed)
                       if rec.seq > last), key=lambda pair: pair[1].seq)

    def _catch_up_locked(self) -> int:
        added = 0
        if self._last_seq is None:
            self._indexed_to = None
            added += self.index.heal(self.log_dir, self.durable)  # gaps below the top
            with self.index.engine.connect() as conn:
                top = conn.execute(select(func.max(self.index.table.c.seq))).scalar()
            self._last_seq = -1 if top is None else int(top)
        for _attempt in range(3):
            last = self._last_seq
            extent = self.durable() if self.durable is not None else None
            fresh = self._fresh(last, extent)
            run: list[tuple[bytes, Any]] = []
            for body, rec in fresh:
                if rec.seq != last + 1 + len(run):
                    break
                run.append((body, rec))
            if run:
                self.index.add(run)
                self._last_seq = run[-1][1].seq
                added += len(run)
            if len(run) == len(fresh):
                # everything durable up to ``extent`` is indexed now
                self._indexed_to = extent
                break
            self._indexed_to = None  # a gap: read the archive again
        return added

    # -- the rules -------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if self.rules_feed is None:
            self.rules_feed = RulesFeed(self.ops.rules)

    def observe(self, record: Any, seq: int | None) -> None:
        """Queue one gateway record for the rule engine (never raises)."""
        event = {"event_type": str(record.event), "actor": record.actor,
                 "outcome": str(record.outcome), "details": dict(record.details),
                 "cert": record.cert_fingerprint}
        if seq is not None:
            event["seq"] = seq
        assert self.rules_feed is not None
        self.rules_feed.put(event)

    def settle(self, timeout: float | None = 30) -> None:
        """Wait until every record queued for the rules so far has been observed."""
        assert self.rules_feed is not None
        self.rules_feed.settle(timeout)

    def restore_replay_guard(self, store: Any, since: Any) -> int:
        """Claim again the request ids of records logged at or after ``since``.

        The replay guard is a table of the control-plane database; the audit log is
        fsync'd before every answer. Where a commit of the database can be lost (SQLite
        with ``synchronous=NORMAL`` on a power loss, a database restored from a backup),
        the log still shows which request ids were used: the ``request_id`` of every
        successful query or admin command, and of every refusal that came after the
        claim (``request_claimed`` in its details) unless it gave the id back
        (``request_released``: refused before anything was disclosed). Only records
        recent enough for their envelope to pass the freshness check again matter
        (``since``); older replays are refused as stale. Returns how many ids were
        missing and are back.
        """
        self.catch_up()
        t = self.index.table
        with self.index.engine.connect() as conn:
            first = conn.execute(select(func.min(t.c.seq)).where(t.c.time >= since)).scalar()
        if first is None:
            return 0
        first = int(first)

        def claims() -> Any:
            for _body, r in iter_archive_records(self.log_dir, after_seq=first - 1):
                if r.seq < first:
                    continue
                claim = _claim_of(r)
                if claim is not None:
                    yield claim

        restored = int(store.restore_request_ids(claims()))
        if restored:
            log.warning("replay guard: %d request id(s) used since %s were missing from the "
                        "database (lost commits?) and are claimed again from the audit log",
                        restored, since)
        return restored

    def replay_recent(self, upto_seq: int, *, now: Any = None) -> int:
        """Feed the rules the log's records of their longest window before ``upto_seq``.

        Rule windows live in memory; without this, a restart would forget the queries
        and failures of the last hour and a burst spanning the restart would go unseen.
        Records come from the archive (only the segments that hold them); alerts are not
        raised twice (:meth:`server.ops.rules.RuleEngine.replay`). Returns how many
        records were replayed.
        """
        engine = self.ops.rules
        window = engine.longest_window()
        if upto_seq <= 0 or not window:
            return 0
        cutoff = (now if now is not None else self.ops.ctx.now()) - window
        self.catch_up()
        t = self.index.table
        with self.index.engine.connect() as conn:
            first = conn.execute(
                select(func.min(t.c.seq)).where(t.c.time >= cutoff, t.c.seq < upto_seq)
            ).scalar()
        if first is None:
            return 0
        first = int(first)
        count = 0

        def in_order() -> Any:
            # Streamed, never held in memory (an hour can be a million records). The
            # archive yields sealed segments in order, then the live tail; a record seen
            # twice (a segment sealed while the directory was read) is skipped.
            nonlocal count
            last = first - 1
            for _body, r in iter_archive_records(self.log_dir, after_seq=first - 1):
                if r.seq <= last or r.seq >= upto_seq:
                    continue
                last = r.seq
                count += 1
                yield {"event_type": r.event, "actor": r.actor, "outcome": r.outcome,
                       "details": dict(r.details), "seq": r.seq, "time": r.time}

        alerts = engine.replay(in_order(), since_seq=first)
        log.info("violation rules: replayed %d record(s) of the last %s (seq %d..%d), "
                 "%d alert(s) raised that were missing", count, window, first,
                 upto_seq - 1, len(alerts))
        return count

    def close(self) -> None:
        assert self.rules_feed is not None
        self.rules_feed.close()
        self.index.dispose()


#: How long the rules thread lets records gather after a wake-up (the rules see a record
#: at most this much later than without it). Measured with bench/gateway.py (one process,
#: concurrency 16, ~300 queries/s): at 5 ms a batch held one or two records and the
#: rules thread used 0.13-0.16 of a core (a user's basis read per batch, a thread switch
#: per record); at 50 ms it used 0.05 (ADR 0007).
LINGER_SECONDS = 0.05


class RulesFeed:
    """One thread running the rule engine over queued events, in order, in batches.

    :meth:`put` only appends to a deque (and wakes the thread when it was idle). The
    thread waits ``linger`` seconds after a wake-up so that a burst arrives as one batch
    (cut short by :meth:`settle`, :meth:`call` or :meth:`close`, which wait for it),
    then observes the whole batch inside :meth:`server.ops.rules.RuleEngine.batch`: per
    batch, not per record, it costs one thread switch and one basis lookup per user.
    A failing rule is logged and the next event still runs (the gateway never stops
    because of a rule). :meth:`settle` returns once everything queued before it ran.
    """

    def __init__(self, engine: Any, *, linger: float = LINGER_SECONDS) -> None:
        self.engine = engine
        self.linger = linger
        self._urgent = False  # a settle() or call() is queued: no lingering for it
        self._queue: collections.deque[Any] = collections.deque()  # events, markers, jobs
        self._cv = threading.Condition()
        self._closed = False
        self._warned_at = -1e9
        self._thread = threading.Thread(target=self._run, name="siogw-ops-rules", daemon=True)
        self._thread.start()

    #: A backlog this long is logged (at most once a minute): the rules lag the log.
    backlog_warning = 10_000

    def put(self, event: dict[str, Any]) -> None:
        with self._cv:
            if self._closed:
                return  # gateway closing: its last records are in the log (catch-up reads it)
            self._queue.append(event)
            depth = len(self._queue)
            if depth == 1:
                self._cv.notify()
        if depth >= self.backlog_warning:
            now = time.monotonic()
            if now - self._warned_at >= 60:
                self._warned_at = now
                log.warning("violation rules lag the audit log: %d records queued", depth)

    def settle(self, timeout: float | None = 30) -> None:
        marker = threading.Event()
        with self._cv:
            if self._closed and not self._thread.is_alive():
                return
            self._queue.append(marker)
            self._urgent = True
            self._cv.notify()
        marker.wait(timeout)

    def close(self, timeout: float = 30) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return  # closed and drained
                if self.linger > 0:
                    self._cv.wait_for(lambda: self._urgent or self._closed, self.linger)
                batch = list(self._queue)
                self._queue.clear()
                self._urgent = False
            self._observe(batch)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the rules thread, in order with the queued events."""
        with self._cv:
            if self._closed:
                return
            self._queue.append(fn)
            self._urgent = True
            self._cv.notify()

    def _observe(self, batch: list[Any]) -> None:
        run: list[dict[str, Any]] = []
        for item in batch:
            if isinstance(item, dict):
                run.append(item)
                continue
            self._events(run)
            run = []
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                item()
            except Exception:  # a failing job must not stop the rules
                log.exception("a job on the rules thread failed")
        self._events(run)

    def _events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        with self.engine.batch():
            for event in events:
                try:
                    self.engine.observe(event)
                except Exception:  # a rule failure must not take the gateway down
                    log.exception("violation rules failed on a %s record", event["event_type"])


#: The request-id kind (``seen_requests.kind``) of each event that claims one.
_CLAIM_KINDS = {"query": "query", "admin": "admin"}


def _claim_of(record: Any) -> tuple[str, str, str, Any] | None:
    """``(request_id, user_id, kind, time)`` if ``record`` shows a claimed request id."""
    details = record.details
    request_id = details.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return None
    # "requested": an admin command's write-ahead record (server.writeahead), written
    # just before its request id is claimed.
    if record.event in _CLAIM_KINDS and record.outcome in ("success", "requested"):
        return request_id, record.actor, _CLAIM_KINDS[record.event], record.time
    # A refusal whose request id was given back (issue 14: the upstream was down, nothing
    # disclosed) leaves the id free: the same envelope may be sent again.
    if (record.event == "refusal" and details.get("request_claimed") is True
            and details.get("request_released") is not True):
        method = str(details.get("method", ""))
        kind = "admin" if "/siogw.v1.AdminService/" in method else "query"
        return request_id, record.actor, kind, record.time
    return None


def open_operations(
    store: Store,
    trust: TrustMaterial,
    audit_log: AuditLog,
    *,
    clock_skew_seconds: int,
    clock: Callable[[], Any] | None = None,
    maintenance_notice_hours: float = 24.0,
) -> OpsWiring:
    """Build and connect the operations domain of a gateway; see the module docstring.

    ``clock`` replaces the wall clock of the operations services (tests);
    ``maintenance_notice_hours`` is ``limits.maintenance_notice_hours`` (§14).
    """
    engine = store.engine
    index = AuditIndex(engine.url.render_as_string(hide_password=False),
                       table_prefix=INDEX_PREFIX)
    index.create()
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    ops = Operations.open(engine, record=audit_log_recorder(audit_log),
                          trust=trust.live(), index=AuditIndexQueries(index),
                          maintenance_notice=_dt.timedelta(hours=maintenance_notice_hours),
                          **extra)
    wiring = OpsWiring(ops=ops, index=index, log_dir=audit_log.root,
                       durable=audit_log.durable_extent)
    # Before any new record reaches the rules: rebuild their windows from the log
    # (records up to now; what is appended from here on comes through the sink).
    upto = int(audit_log.tree_size)
    # The replay guard, made whole from the log before any call is served: ids of
    # requests whose envelope could still pass the freshness check (up to twice
    # the clock skew old, plus a margin).
    wiring.restore_replay_guard(
        store, ops.ctx.now() - _dt.timedelta(seconds=2 * clock_skew_seconds + 60))
    assert wiring.rules_feed is not None
    wiring.rules_feed.call(lambda: wiring.replay_recent(upto))
    return wiring


async def run_ops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking) operations call off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
