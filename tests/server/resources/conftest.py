"""Fixtures: the synthetic dataset seeded into SQLite (always) and PostgreSQL (if configured).

``engine`` is parametrised over both backends. PostgreSQL comes from
``SIOGW_TEST_PG_URL``; without it those cases skip, except under ``CI=true`` where they
fail. Each PostgreSQL session works in its own schema (``search_path``), dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from server.resources import EmbeddedConnector, seed_dataset
from tests.server.resources.dbutil import drop_pg_schema, pg_schema_engine, pg_url, sqlite_engine


@pytest.fixture(scope="session")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = sqlite_engine(tmp_path_factory.mktemp("res") / "res.db")
    seed_dataset(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_seeded() -> Iterator[Engine]:
    admin, engine, schema = pg_schema_engine(pg_url())
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
