"""What every aggregate of the store shares: the engine, transactions, the pinned
connection of the hot path and prepared statements (see :mod:`server.store`).

The pool is sized from the process's worker threads (:func:`pool_size_for`), and a
thread inside :meth:`StoreBase.pinned_connection` runs every statement on that one
connection, so no thread holds one connection while waiting for another. On SQLite,
every SQLAlchemy transaction commits with ``synchronous=FULL`` (security state is
durable before it is acknowledged) and the replay claims of the hot path with NORMAL
(docs/adr/0005-gateway.md §3).

A SQLite database file is created 0600 before SQLite opens it (and an existing one, with
its ``-wal``/``-shm``, tightened to 0600): it holds people's records, and SQLite gives
its ``-wal``/``-shm`` files the database file's mode (:mod:`server.files`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from audit.sqlguard import install_text_guard
from server.files import private_file
from server.prepared import Prepared
from server.store.errors import StoreUnavailable
from siogw_api.errors import InputError, PolicyError, StorageError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit is durable across a *process* crash (it is in the WAL file)
    # without an fsync per commit; the WAL is fsync'd at checkpoints. A power loss may
    # lose the last commits: only the replay claims of the hot path commit this way (they
    # are rebuilt from the audit log at start). Every SQLAlchemy transaction -- blocks,
    # revocations, sessions ended, consents, the operations domain -- switches the
    # connection to FULL first (_full_sync_on_begin): durable before it is acknowledged.
    # See docs/adr/0005-gateway.md §3 (durability of security state).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints (copy the WAL into the database, fsync) run in the gateway's own
    # background thread (Store.start_checkpointer), not inside whichever commit crosses
    # SQLite's default 1,000 pages: on the query path that commit is on the event loop.
    # The high threshold stays as a safety net for processes without the thread.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.close()


#: SQLite's own checkpoint threshold (pages of 4 KiB) when the background thread runs.
WAL_AUTOCHECKPOINT_PAGES = 16384

#: Where a pooled SQLite connection's current ``synchronous`` level is kept (its pool
#: record's ``info``): the PRAGMA is only sent when the level changes.
_SYNC_KEY = "siogw_synchronous"


def set_synchronous(dbapi_conn: Any, info: dict[str, Any], level: str) -> None:
    """Set a SQLite connection's ``synchronous`` level (``FULL`` or ``NORMAL``) unless it
    has it already. SQLite refuses the change inside a transaction: call it between
    transactions (before a write begins); inside one, nothing is changed."""
    if info.get(_SYNC_KEY) == level or getattr(dbapi_conn, "in_transaction", False):
        return
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA synchronous={level}")
    finally:
        cur.close()
    info[_SYNC_KEY] = level


def _full_sync_on_begin(conn: Connection) -> None:
    """``begin`` listener (SQLite): a SQLAlchemy transaction commits with FULL sync.

    The control-plane's security state (a block, a revocation, a session ended, a
    consent, everything the operations domain writes) is written in SQLAlchemy
    transactions, and is acknowledged after the commit: with FULL, SQLite fsyncs the
    WAL at that commit, so a power loss right after cannot take it back. pysqlite
    begins its own transaction only at the first write, so the connection is between
    transactions here.
    """
    fairy = conn.connection
    set_synchronous(fairy.dbapi_connection, fairy.info, "FULL")


#: Connections kept for what runs beside the worker threads (the WAL checkpointer, the
#: housekeeper, the rules feed, the Reports catch-up, an admin call on the event loop).
BACKGROUND_CONNECTIONS = 4


def pool_size_for(threads: int) -> int:
    """The pool size of a process with ``threads`` worker threads (issue 14, finding 4).

    Each worker thread holds at most one connection at a time (a query's statements run
    on its pinned connection, nested reads included), plus the background threads'.
    """
    return max(1, threads) + BACKGROUND_CONNECTIONS


def private_sqlite_file(url: str) -> None:
    """Create (or tighten) the file of a SQLite ``url`` and its ``-wal``/``-shm`` as 0600;
    nothing for an in-memory database or another dialect."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # create_engine reports a bad URL precisely
        return
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:" \
            or database.startswith("file:"):
        return
    db = Path(database)
    private_file(db)
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            private_file(side)


def _in_memory(url: str) -> bool:
    """A SQLite in-memory URL (its engine has no sized pool)."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # create_engine reports a bad URL precisely
        return False
    database = parsed.database or ""
    return parsed.drivername.startswith("sqlite") and (
        database in ("", ":memory:") or "mode=memory" in database)


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # never let redaction fail the error path
        return "<database url>"


class StoreBase:
    """The engine and the transaction helpers the aggregates' methods use."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int | None = None) -> None:
        """``pool_size``: connections kept in the pool (:func:`pool_size_for` the process's
        worker threads); as many again may be opened beyond it for a burst. By default
        SQLAlchemy's (5 + 10), enough for a command-line tool."""
        self.url = url
        self._sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            private_sqlite_file(url)
        else:
            kwargs["pool_pre_ping"] = True
        if pool_size is not None and not _in_memory(url):
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        try:
            self.engine: Engine = install_text_guard(sa.create_engine(url, **kwargs))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreUnavailable(f"cannot open database {redact(url)}", detail=str(exc)) from exc
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _full_sync_on_begin)
        # SQLite has one writer at a time and a blocked writer sleeps in the busy handler
        # (1, 2, 5, … 100 ms steps): the hot-path writes of this process queue on a lock
        # instead, which wakes the next writer as soon as the previous one commits.
        self._write_lock: Any = (
            threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )
        self._pin = threading.local()

    @contextmanager
    def pinned_connection(self) -> Iterator[None]:
        """Within the block, this thread's statements share one pooled connection: the hot
        path's prepared ones (:meth:`session_context`, :meth:`claim_request_id`) and every
        other method's transaction (:meth:`_tx`: the revocation lookup of an intermediate
        CA, :meth:`end_session` after a refusal).

        A query's checks then take one connection from the pool instead of one per
        statement: one pre-ping (PostgreSQL) and one reset on return instead of two, and
        a thread never waits for a second connection while holding one (with more
        threads than connections that wait ran the pool dry: issue 14, finding 4). The
        claim commits what the connection did; leaving the block returns it to the pool,
        which rolls back anything left open (a read after a refusal). Nested blocks
        share the outer one's connection.
        """
        if getattr(self._pin, "conn", None) is not None:
            yield
            return
        try:
            conn = self.engine.connect()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        self._pin.conn = conn
        try:
            yield
        finally:
            self._pin.conn = None
            conn.close()

    @property
    def _pinned(self) -> Any:
        """This thread's pinned DB-API connection (None outside :meth:`pinned_connection`)."""
        conn: Connection | None = getattr(self._pin, "conn", None)
        return None if conn is None else conn.connection

    @property
    def _dbapi_error(self) -> type[Exception]:
        """The driver's base error class (prepared statements raise it unwrapped)."""
        dbapi = self.engine.dialect.dbapi
        return dbapi.Error if dbapi is not None else Exception

    def _prepared(self, attr: str, stmt: Any) -> Prepared:
        prepared: Prepared | None = getattr(self, attr)
        if prepared is None:
            prepared = Prepared(self.engine, stmt)
            setattr(self, attr, prepared)
        return prepared

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction, committed at the end of the block; on this thread's pinned
        connection when there is one (joining its open transaction, if any)."""
        pinned: Connection | None = getattr(self._pin, "conn", None)
        try:
            if pinned is None:
                with self.engine.begin() as conn:
                    yield conn
            elif pinned.in_transaction():
                yield pinned
            else:
                with pinned.begin():
                    yield pinned
        except (IntegrityError, StorageError, PolicyError, InputError):
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
