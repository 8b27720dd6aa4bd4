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
on return), applies the NUL guard of :mod:`siogw.db`, and returns rows as named tuples.
The answers are the same as ``Connection.execute`` gives (tests compare the two).
DB-API errors are raised as they are: the caller maps them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from siogw.db import NulCharacter, _has_nul


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
            if bp.required and bp.callable is None and bp.value is None:
                self._required.add(bp.key)
            else:
                self._defaults[bp.key] = bp.effective_value
            self._names[bp.key] = name
            proc = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._bind[bp.key] = proc
        self._row: Any = None
        self._result: list[Callable[[Any], Any] | None] = []
        if isinstance(stmt, sa.sql.Select):
            columns = list(stmt.selected_columns)
            self._row = collections.namedtuple(  # type: ignore[misc]
                "Row", [str(c.key) for c in columns], rename=True
            )
            self._result = [
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ]

    def _params(self, values: Mapping[str, Any]) -> Any:
        missing = self._required.difference(values)
        if missing:
            raise sa.exc.ArgumentError(f"values missing for {sorted(missing)}")
        merged = {**self._defaults, **values}
        if _has_nul(merged):
            raise NulCharacter("a text value contains the NUL character (U+0000)")
        for key, proc in self._bind.items():
            if key in merged:
                merged[key] = proc(merged[key])
        by_name = {self._names.get(k, k): v for k, v in merged.items()}
        if self._positional:
            return [by_name[name] for name in self._order]
        return by_name

    def all(self, values: Mapping[str, Any]) -> list[Any]:
        """Run a SELECT; its rows as named tuples with the column types applied."""
        params = self._params(values)
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(self.sql, params)
                raw = cur.fetchall()
            finally:
                cur.close()
        finally:
            conn.close()  # back to the pool (which rolls the read transaction back)
        procs = self._result
        make = self._row._make
        if not any(procs):
            return [make(r) for r in raw]
        return [
            make(v if p is None else p(v) for p, v in zip(procs, r, strict=True)) for r in raw
        ]

    def run(self, values: Mapping[str, Any]) -> int:
        """Run a write in its own transaction and commit; the rows it touched."""
        params = self._params(values)
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.execute(self.sql, params)
                count = int(cur.rowcount)
            finally:
                cur.close()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        return count
