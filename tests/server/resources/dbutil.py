"""Database helpers for the data-plane tests (SQLite engines, throw-away PostgreSQL schemas)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine


def sqlite_engine(path: Path | None = None) -> Engine:
    """A SQLite engine usable from worker threads (asyncio.to_thread); in memory if no path."""
    if path is None:
        return sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool,
                                connect_args={"check_same_thread": False})
    return sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})


def pg_url() -> str:
    """``SIOGW_TEST_PG_URL``; skip without it, fail under ``CI=true``."""
    url = os.environ.get("SIOGW_TEST_PG_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("SIOGW_TEST_PG_URL is required under CI=true")
        pytest.skip("SIOGW_TEST_PG_URL not set")
    return url


def pg_schema_engine(url: str) -> tuple[Engine, Engine, str]:
    """(admin engine, engine bound to a fresh schema, schema name)."""
    schema = f"res_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return admin, engine, schema


def drop_pg_schema(admin: Engine, engine: Engine, schema: str) -> None:
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
