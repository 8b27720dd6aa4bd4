"""A guard every engine of the project installs: no NUL characters in SQL parameters.

PostgreSQL text cannot hold U+0000 (psycopg2 raises a bare ``ValueError`` while binding,
which surfaced as an internal error); SQLite stores it and compares it oddly. No field
of ours has a use for it, so a parameter that contains one is bad input: the guard
raises :class:`siogw_api.errors.InputError` (``INVALID_ARGUMENT`` at the gateway) before the
statement runs, the same on both databases. Found by tests/server/test_bad_input_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from siogw_api.errors import InputError


class NulCharacter(InputError):
    """A text value contains the NUL character (U+0000)."""

    reason_code = "NUL_CHARACTER"


def _has_nul(params: Any) -> bool:
    if isinstance(params, str):
        return "\x00" in params
    if isinstance(params, Mapping):
        return any(isinstance(v, str) and "\x00" in v for v in params.values())
    if isinstance(params, Sequence) and not isinstance(params, bytes | bytearray):
        return any(_has_nul(p) for p in params)
    return False


def _before_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if parameters and _has_nul(parameters):
        raise NulCharacter("a text value contains the NUL character (U+0000)")


def install_text_guard(engine: Engine) -> Engine:
    """Install the guard on ``engine`` (idempotent); returns the engine."""
    if not sa.event.contains(engine, "before_cursor_execute", _before_execute):
        sa.event.listen(engine, "before_cursor_execute", _before_execute)
    return engine


def has_text_guard(engine: Engine) -> bool:
    """Is the guard installed on ``engine``?"""
    return bool(sa.event.contains(engine, "before_cursor_execute", _before_execute))
