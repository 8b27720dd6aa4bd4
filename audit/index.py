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
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
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


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


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
        )
        Index(f"ix_{name}_time", self.table.c.time)
        Index(f"ix_{name}_actor_time", self.table.c.actor, self.table.c.time)
        Index(f"ix_{name}_event", self.table.c.event)

    def create(self) -> None:
        self._run(lambda: self.metadata.create_all(self.engine))

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
            "actor": rec.actor[:256],
            "cert_fingerprint": rec.cert_fingerprint,
            "event": rec.event[:64],
            "resource": _text(d.get("resource"), 64),
            "basis": _text(d.get("basis"), 256),
            "task": _text(d.get("task"), 256),
            "outcome": rec.outcome[:32],
            "request_id": _text(d.get("request_id"), 128),
            "leaf_hash": leaf_hash(body).hex(),
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
