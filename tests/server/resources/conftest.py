"""Fixtures: the synthetic dataset seeded into SQLite (always) and PostgreSQL (if configured).

``engine`` is parametrised over both backends. PostgreSQL comes from
``SIOGW_TEST_PG_URL``; without it those cases skip, except under ``CI=true`` where they
fail. Each PostgreSQL session works in its own schema (``search_path``), dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from server.resources import EmbeddedConnector, seed_dataset


def sqlite_engine(path: Path | None = None) -> Engine:
    """A SQLite engine usable from worker threads (asyncio.to_thread); in memory if no path."""
    if path is None:
        return sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool,
                                connect_args={"check_same_thread": False})
    return sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})


def _pg_url() -> str:
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


@pytest.fixture(scope="session")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = sqlite_engine(tmp_path_factory.mktemp("res") / "res.db")
    seed_dataset(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_seeded() -> Iterator[Engine]:
    admin, engine, schema = pg_schema_engine(_pg_url())
    try:
        seed_dataset(engine)
        yield engine
    finally:
        drop_pg_schema(admin, engine, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_seeded" if request.param == "sqlite" else "pg_seeded"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def embedded(engine: Engine) -> EmbeddedConnector:
    return EmbeddedConnector(engine)
