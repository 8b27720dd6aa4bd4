"""The Reports index (R15/R16): a SQL table of audit records, rebuilt from the log.

The index is never the source of truth: :meth:`AuditIndex.rebuild` drops and refills it
from the log files (``siogw audit reindex`` verifies the archive first), and anything
that must be proved is proved from the archive, not from here. SQLAlchemy 2.x Core;
tested on SQLite and PostgreSQL. ``table_prefix`` lets several indexes (or parallel test
suites) share one database.

Catching up appends by seq (``server.ops_wiring.OpsWiring.catch_up``); :meth:`AuditIndex.heal`
reconciles the table with the log -- every seq from 0 to the top must be there, and the
missing ones are read from the log and added -- so a row lost between batches (or
deleted by hand) does not stay lost behind a higher seq. The engine pre-pings its
pooled connections: after PostgreSQL backends were terminated, the next Reports read
reconnects instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from audit.archive import iter_archive_records
from audit.record import LoggedRecord
from audit.sqlguard import install_text_guard
from signing.merkle import leaf_hash
from siogw_api.errors import StorageError
from siogw_api.timeutil import ensure_utc

_BATCH = 2000


#: The running log's :meth:`audit.log.AuditLog.durable_extent` (None: a stopped log,
#: whose files hold only what recovery kept).
Durable = Callable[[], tuple[int, int]] | None


def durable_records(
    log_dir: str | os.PathLike[str], *, after_seq: int = -1, durable: Durable = None
) -> Iterable[tuple[bytes, LoggedRecord]]:
    """The log's records as the index may take them: of the live segment only the bytes
    up to its last durable record, as the running log reports them (``durable``), never
    a tail that is written but not yet fsync'd (issue 14, finding 7). The extent is taken
    before the directory is read, so it never covers more than the files hold."""
    extent = durable() if durable is not None else None
    return iter_archive_records(log_dir, after_seq=after_seq, durable=extent)


@dataclass(frozen=True)
class IndexRow:
    seq: int
    time: _dt.datetime
    actor: str
    cert_fingerprint: str | None
    event: str
    resource: str | None
    basis: str | None
    task: str | None
    outcome: str
    request_id: str | None
    leaf_hash: str
    # Issue 15 (Reports for control and supervision); None for records without them.
    unit: str | None = None
    subject: str | None = None
    justification: str | None = None
    parameters: str | None = None
    code: str | None = None
    reason: str | None = None
    message: str | None = None
    result_summary: str | None = None
    truncated: bool | None = None


#: The columns added by issue 15. A table without them (made by an older release) is
#: dropped and refilled from the log by :meth:`AuditIndex.create` and the catch-up: the
#: index is derived, so an upgrade costs one re-read of the log and nothing else.
REPORT_COLUMNS = ("unit", "subject", "justification", "parameters", "code", "reason",
                  "message", "result_summary", "truncated")


def _clean(text: str) -> str:
    """``text`` with U+0000 shown as U+FFFD: a signed request may carry it and the log
    keeps it, but the index's databases refuse it (:mod:`audit.sqlguard`), and one such
    record must not stop every later catch-up."""
    return text.replace("\x00", "\ufffd")


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    return _clean(str(value)[:limit])


def _parameters(value: Any) -> str | None:
    """The query parameters as compact sorted JSON (``{"iin":"..."}``), or None."""
    if not isinstance(value, dict) or not value:
        return None
    items = {_clean(str(k)[:64]): _clean(str(v)[:256]) for k, v in list(value.items())[:16]}
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text[:1024]


def _code(rec: LoggedRecord) -> str | None:
    """The gRPC status name of a record: a refusal's ``code``; ``OK`` for an answered
    query (older records have no ``code`` on success)."""
    code = rec.details.get("code")
    if code is not None:
        return _clean(str(code)[:32])
    return "OK" if rec.event == "query" and rec.outcome == "success" else None


class AuditIndex:
    """One index table ``<prefix>audit_records`` in the database at ``url``."""

    def __init__(self, url: str, *, table_prefix: str = "") -> None:
        if table_prefix and not table_prefix.replace("_", "").isalnum():
            raise StorageError(f"bad table prefix {table_prefix!r}")
        try:
            self.engine = install_text_guard(create_engine(
                url, future=True, pool_pre_ping=not url.startswith("sqlite")))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StorageError("cannot open the index database", detail=str(exc)) from exc
        self.metadata = MetaData()
        name = f"{table_prefix}audit_records"
        self.table = Table(
            name,
            self.metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("time", DateTime(timezone=True), nullable=False),
            Column("actor", String(256), nullable=False),
            Column("cert_fingerprint", String(64)),
            Column("event", String(64), nullable=False),
            Column("resource", String(64)),
            Column("basis", String(256)),
            Column("task", String(256)),
            Column("outcome", String(32), nullable=False),
            Column("request_id", String(128)),
            Column("leaf_hash", String(64), nullable=False),
            Column("unit", String(300)),
            Column("subject", String(64)),
            Column("justification", String(2000)),
            Column("parameters", String(1024)),
            Column("code", String(32)),
            Column("reason", String(64)),
            Column("message", String(512)),
            Column("result_summary", String(512)),
            Column("truncated", Boolean),
        )
        Index(f"ix_{name}_time", self.table.c.time)
        Index(f"ix_{name}_actor_time", self.table.c.actor, self.table.c.time)
        Index(f"ix_{name}_event", self.table.c.event)
        Index(f"ix_{name}_subject", self.table.c.subject)

    def create(self) -> None:
        """Create the table; one made by an older release without the columns of
        :data:`REPORT_COLUMNS` is dropped first (the catch-up refills it from the log)."""

        def work() -> None:
            existing = inspect(self.engine)
            if existing.has_table(self.table.name):
                held = {c["name"] for c in existing.get_columns(self.table.name)}
                if not held.issuperset(REPORT_COLUMNS):
                    self.table.drop(self.engine)
            self.metadata.create_all(self.engine)

        self._run(work)

    def drop(self) -> None:
        self._run(lambda: self.metadata.drop_all(self.engine))

    def dispose(self) -> None:
        self.engine.dispose()

    def _run(self, fn: Any) -> Any:
        try:
            return fn()
        except SQLAlchemyError as exc:
            raise StorageError("audit index database error", detail=str(exc)) from exc

    @staticmethod
    def _row(body: bytes, rec: LoggedRecord) -> dict[str, Any]:
        d = rec.details
        return {
            "seq": rec.seq,
            "time": rec.time,
            "actor": _clean(rec.actor[:256]),
            "cert_fingerprint": rec.cert_fingerprint,
            "event": _clean(rec.event[:64]),
            "resource": _text(d.get("resource"), 64),
            "basis": _text(d.get("basis"), 256),
            "task": _text(d.get("task"), 256),
            "outcome": _clean(rec.outcome[:32]),
            "request_id": _text(d.get("request_id"), 128),
            "leaf_hash": leaf_hash(body).hex(),
            "unit": _text(d.get("unit"), 300),
            "subject": _text(d.get("subject"), 64),
            "justification": _text(d.get("justification"), 2000),
            "parameters": _parameters(d.get("parameters")),
            "code": _code(rec),
            "reason": _text(d.get("reason"), 64),
            "message": _text(d.get("message"), 512),
            "result_summary": _text(d.get("result_summary"), 512),
            "truncated": d.get("truncated") if isinstance(d.get("truncated"), bool) else None,
        }

    def add(self, records: Iterable[tuple[bytes, LoggedRecord]]) -> int:
        """Insert (canonical bytes, record) pairs; returns how many.

        Each batch of ``_BATCH`` rows is its own transaction: on SQLite a long catch-up
        never holds the database's one write lock for more than a batch, so the
        gateway's own writes (the replay claim of every query) wait milliseconds, not
        the whole catch-up. A failure leaves the batches before it in place; indexing
        is idempotent by seq (callers re-read the top seq and go on).
        """
        count = 0
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            if batch:
                with self.engine.begin() as conn:
                    conn.execute(insert(self.table), batch)
                batch.clear()

        def work() -> None:
            nonlocal count
            for body, rec in records:
                batch.append(self._row(body, rec))
                count += 1
                if len(batch) >= _BATCH:
                    flush()
            flush()

        self._run(work)
        return count

    def missing_seqs(self) -> list[int]:
        """The seqs from 0 to the table's top that it does not hold (oldest first)."""
        t = self.table

        def work() -> list[int]:
            with self.engine.connect() as conn:
                top, count = conn.execute(select(func.max(t.c.seq), func.count())).one()
                if top is None or int(count) == int(top) + 1:
                    return []
                held = set(conn.execute(select(t.c.seq)).scalars())
            return [seq for seq in range(int(top) + 1) if seq not in held]

        result: list[int] = self._run(work)
        return result

    def heal(self, log_dir: str | os.PathLike[str], durable: Durable = None) -> int:
        """Reconcile with the log: add the records of :meth:`missing_seqs` that the log
        holds (durably: see :func:`durable_records`); returns how many were added."""
        missing = set(self.missing_seqs())
        if not missing:
            return 0
        return self.add((body, rec) for body, rec in durable_records(log_dir, durable=durable)
                        if rec.seq in missing)

    def rebuild(self, log_dir: str | os.PathLike[str]) -> int:
        """Drop and refill the table from the log files (in one transaction)."""
        self.create()

        def work() -> int:
            with self.engine.begin() as conn:
                conn.execute(delete(self.table))
                count = 0
                batch: list[dict[str, Any]] = []
                for body, rec in iter_archive_records(log_dir):
                    batch.append(self._row(body, rec))
                    count += 1
                    if len(batch) >= _BATCH:
                        conn.execute(insert(self.table), batch)
                        batch = []
                if batch:
                    conn.execute(insert(self.table), batch)
                return count

        result: int = self._run(work)
        return result

    def count(self) -> int:
        def work() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())
        result: int = self._run(work)
        return result

    def search(
        self,
        *,
        actor: str | None = None,
        event: str | None = None,
        outcome: str | None = None,
        since: _dt.datetime | None = None,
        until: _dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[IndexRow]:
        """Records matching all given filters, oldest first (``since`` <= time < ``until``)."""
        t = self.table
        q = select(t).order_by(t.c.seq).limit(max(1, min(limit, 100_000)))
        if actor is not None:
            q = q.where(t.c.actor == actor)
        if event is not None:
            q = q.where(t.c.event == event)
        if outcome is not None:
            q = q.where(t.c.outcome == outcome)
        if since is not None:
            q = q.where(t.c.time >= ensure_utc(since))
        if until is not None:
            q = q.where(t.c.time < ensure_utc(until))

        def work() -> list[IndexRow]:
            with self.engine.connect() as conn:
                return [
                    IndexRow(**{**row._mapping, "time": ensure_utc(row.time)})
                    for row in conn.execute(q)
                ]

        result: list[IndexRow] = self._run(work)
        return result
