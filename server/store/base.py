"""What every aggregate of the store shares: the engine, transactions, the pinned
connection of the hot path and prepared statements (see :mod:`server.store`).

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
    # lose the last commits; see docs/adr/0005-gateway.md (replay guard and power loss).
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


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # never let redaction fail the error path
        return "<database url>"


class StoreBase:
    """The engine and the transaction helpers the aggregates' methods use."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            private_sqlite_file(url)
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = install_text_guard(sa.create_engine(url, **kwargs))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreUnavailable(f"cannot open database {redact(url)}", detail=str(exc)) from exc
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time and a blocked writer sleeps in the busy handler
        # (1, 2, 5, … 100 ms steps): the hot-path writes of this process queue on a lock
        # instead, which wakes the next writer as soon as the previous one commits.
        self._write_lock: Any = (
            threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )
        self._pin = threading.local()

    @contextmanager
    def pinned_connection(self) -> Iterator[None]:
        """Within the block, this thread's hot-path statements (:meth:`session_context`,
        :meth:`claim_request_id`) share one pooled connection.

        A query's checks then take one connection from the pool instead of one per
        statement: one pre-ping (PostgreSQL) and one reset on return instead of two. The
        claim commits what the connection did; leaving the block returns it to the pool,
        which rolls back anything left open (a read after a refusal). Nested blocks
        share the outer one's connection.
        """
        if getattr(self._pin, "conn", None) is not None:
            yield
            return
        try:
            conn = self.engine.raw_connection()
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
        return getattr(self._pin, "conn", None)

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
        try:
            with self.engine.begin() as conn:
                yield conn
        except (IntegrityError, StorageError, PolicyError, InputError):
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
