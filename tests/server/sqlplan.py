"""Test helpers: the statements an engine sends, and how SQLite's planner runs one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa


@contextlib.contextmanager
def statements_sent(engine: sa.Engine, prefix: str = "") -> Iterator[list[tuple[str, Any]]]:
    """Collect ``(sql, params)`` of every statement ``engine`` sends in the block
    (prepared ones included) whose text starts with ``prefix`` (case-insensitive)."""
    sent: list[tuple[str, Any]] = []
    want = prefix.upper()

    def listener(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith(want):
            sent.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


def sqlite_plan(engine: sa.Engine, sql: str, params: Any) -> list[str]:
    """The steps of SQLite's ``EXPLAIN QUERY PLAN`` for ``sql`` with ``params``."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("EXPLAIN QUERY PLAN " + sql, params)
        steps = [str(row[3]) for row in cur.fetchall()]
    finally:
        raw.close()
    assert steps, "no plan"
    return steps
