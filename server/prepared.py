"""Hot statements: compiled once by SQLAlchemy, run on the DB-API cursor directly.

A SQLAlchemy Core ``Connection.execute`` costs about 150-200 microseconds of Python
around a statement that SQLite answers in 20-30 (measured for the gateway's session
read; see ADR 0005 §12). That is execution contexts, cache keys, result metadata and
pool events, on every call. For the few statements that every query runs, a
:class:`Prepared` keeps what SQLAlchemy would produce and skips the rest:

* the SQL text and parameter order of the statement compiled for the engine's dialect;
* the bind processors of its parameters (e.g. datetimes as SQLite stores them);
* the result processors of its columns (e.g. SQLite's text back to ``datetime``).

It runs on a connection from the engine's own pool (the same pragmas, pre-ping and reset
on return) and returns rows as named tuples; a text statement's rows are named after
its result columns, untyped. The engine's ``before_cursor_execute`` listeners still see
every statement, called with ``conn`` and ``context`` None: the NUL guard of
:mod:`audit.sqlguard` refuses bad text as before, and tests can count statements. The answers
are the same as ``Connection.execute`` gives (tests compare the two). DB-API errors are
raised as they are: the caller maps them.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


class Prepared:
    """``stmt`` compiled for ``engine``; :meth:`all` / :meth:`run` execute it."""

    def __init__(self, engine: Engine, stmt: ClauseElement) -> None:
        self.engine = engine
        dialect = engine.dialect
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        self.sql = str(compiled)
        self._positional = bool(compiled.positional)
        self._order: tuple[str, ...] = tuple(compiled.positiontup or ()) if self._positional else ()
        self._defaults: dict[str, Any] = {}
        self._required: set[str] = set()
        self._bind: dict[str, Callable[[Any], Any]] = {}
        self._names: dict[str, str] = {}  # parameter key -> its name in the SQL text
        for bp, name in compiled.bind_names.items():
            if bp.expanding:
                raise sa.exc.ArgumentError(
                    "a prepared statement cannot hold an expanding IN parameter "
                    f"({bp.key}): write the IN list as OR-ed equalities")
            if bp.required and bp.callable is None and bp.value is None:
                self._required.add(bp.key)
            else:
                self._defaults[bp.key] = bp.effective_value
            self._names[bp.key] = name
            proc = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._bind[bp.key] = proc
        # Rows and result processors are made from the first result: some processors
        # need the driver's type code of the column (PostgreSQL numerics).
        self._columns = list(stmt.selected_columns) if isinstance(stmt, sa.sql.Select) else None
        self._row: Any = None
        self._result: list[Callable[[Any], Any] | None] = []

    def _params(self, values: Mapping[str, Any]) -> Any:
        missing = self._required.difference(values)
        if missing:
            raise sa.exc.ArgumentError(f"values missing for {sorted(missing)}")
        merged = {**self._defaults, **values}
        for key, proc in self._bind.items():
            if key in merged:
                merged[key] = proc(merged[key])
        by_name = {self._names.get(k, k): v for k, v in merged.items()}
        if self._positional:
            return [by_name[name] for name in self._order]
        return by_name

    def _describe(self, description: Any) -> None:
        dialect = self.engine.dialect
        if self._columns is None:  # text: the driver's column names, values as they come
            names = [d[0] for d in description]
            self._result = [None] * len(names)
        else:
            names = [str(c.key) for c in self._columns]
            self._result = [
                c.type.dialect_impl(dialect).result_processor(dialect, d[1])
                for c, d in zip(self._columns, description, strict=True)
            ]
        self._row = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def _execute(self, cur: Any, params: Any) -> None:
        for listener in self.engine.dispatch.before_cursor_execute:
            listener(None, cur, self.sql, params, None, False)
        cur.execute(self.sql, params)

    @contextlib.contextmanager
    def _cursor(self, conn: Any) -> Iterator[tuple[Any, Any]]:
        """(connection, cursor): ``conn``, or one of the pool's returned after the block."""
        own = conn is None
        if own:
            conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                yield conn, cur
            finally:
                cur.close()
        finally:
            if own:
                conn.close()  # back to the pool (which rolls a read transaction back)

    def all(self, values: Mapping[str, Any], *, conn: Any = None) -> list[Any]:
        """Run a query; its rows as named tuples (a SELECT's with column types applied).

        ``conn``: a connection from ``engine.raw_connection()`` to run on (several
        statements, one checkout: one pre-ping on PostgreSQL); by default one of its own.
        """
        params = self._params(values)
        with self._cursor(conn) as (_conn, cur):
            self._execute(cur, params)
            raw = cur.fetchall()
            if self._row is None:
                self._describe(cur.description)
        procs = self._result
        make = self._row._make
        if not any(procs):
            return [make(r) for r in raw]
        return [
            make(v if p is None else p(v) for p, v in zip(procs, r, strict=True)) for r in raw
        ]

    def run(self, values: Mapping[str, Any], *, conn: Any = None) -> int:
        """Run a write and commit (rolled back if it fails); the rows it touched.

        ``conn``: a connection from ``engine.raw_connection()`` to run on (it stays open:
        the commit also ends what ran on it before); by default one of its own.
        """
        params = self._params(values)
        with self._cursor(conn) as (db, cur):
            try:
                self._execute(cur, params)
                count = int(cur.rowcount)
                db.commit()
            except BaseException:
                db.rollback()
                raise
        return count
