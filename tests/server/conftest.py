"""Fixtures of the gateway tests: a test CA, SoftHSM token users, a running gateway.

The gateway fixtures are module-scoped (one server per test module) to keep the suite
fast; tokens are made directly in the session :class:`softhsm.TokenStore`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import sqlalchemy as sa


def fresh_pg_url(base_url: str) -> tuple[str, Callable[[], None]]:
    """A URL whose connections use a new, empty schema; and a function dropping it."""
    schema = f"siogw_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return url, drop
