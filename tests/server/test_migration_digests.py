"""Issue 14, finding 7: migrations are immutable once landed.

Each shipped migration's digest -- its version, its description, the source of its
function and of the module's functions and constants it reaches -- is recorded here. A
changed digest fails: write a new migration instead (migration 2 was edited after it
landed; these are its digests as of issue 14, and migration 5 repairs the databases
created in between). Adding a migration means adding its digest.
"""

from __future__ import annotations

import hashlib
import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.store import Store, schema
from server.store.schema import MIGRATIONS, schema_version

RECORDED = {
    1: "0e44e63b3d800ef11eddf262bbea10759a7114da50bad919096dabfe0f8117aa",
    2: "672138924855dab9f8bf53d5aad0bb70c97e2815eea7e0d069d633099e4b3172",
    3: "ba9f94c9056f3fca25a437d7e0442308f8514eef448c526b10db3b4ac8b7534e",
    4: "bf8693bbcf11f9de9e8d6e8ce450b64d9b72ab269df1253af98efa2a4de21897",
    5: "c0c328b5a5c8d2085928ead6df5298d3a41abe108ca53c003ea12b24ecfe6d0c",
    6: "3fef6bc824be2078885b5915de69e3c7a4b433b4769a564eac6826d91df49444",
    # 7 and 8 re-recorded (issue 16, before anything shipped): rewritten from the live
    # tables to frozen shapes of the same columns and indexes.
    7: "f7cbf572cbc12a19d440d7650e576c6d5a12e0f5f9cd28408b544bd4a0897e67",
    8: "7a0d61d4307414ec438c850cc4156dc5ed7dd2728f59590070eae62f19da6e77",
    9: "e3ed169c62233adbcbb98ccd7c2a847fe89322a30587755ad4003f876bef9684",
    10: "1f7cf6df61b7a676ac097bfff4573db1dd179e69d09493c16cacdd48bdda6e96",
}


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _frozen_value(obj: object) -> bool:
    """A constant whose repr is its content: text, numbers, tuples of them or of frozen
    index shapes. Not the live tables: a later migration changes those by design."""
    if isinstance(obj, (str, int)):
        return True
    return isinstance(obj, tuple) and all(isinstance(x, (str, int, sa.Index)) for x in obj)


def migration_digest(version: int, description: str, apply: Callable[..., Any]) -> str:
    parts: list[str] = [str(version), description]
    seen: set[str] = set()

    def walk(fn: Any) -> None:
        if fn.__name__ in seen:
            return
        seen.add(fn.__name__)
        parts.append(inspect.getsource(fn))
        module = vars(schema)
        for name in sorted(_names(fn.__code__)):
            obj = module.get(name)
            if inspect.isfunction(obj) and obj.__module__ == schema.__name__:
                walk(obj)
            elif _frozen_value(obj) and name not in seen:
                seen.add(name)
                parts.append(f"{name}={obj!r}")

    walk(apply)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def test_every_shipped_migration_matches_its_recorded_digest() -> None:
    digests = {v: migration_digest(v, d, fn) for v, d, fn in MIGRATIONS}
    assert set(digests) == set(RECORDED), "a new migration needs its digest recorded here"
    changed = [v for v in digests if digests[v] != RECORDED[v]]
    assert not changed, f"migrations {changed} were edited after they landed: {digests}"


def test_the_digest_sees_an_edit() -> None:
    version, description, apply = MIGRATIONS[1]
    assert migration_digest(version, description, apply) != migration_digest(
        version, description + ".", apply)


def _index_names(store: Store) -> set[str]:
    inspector = sa.inspect(store.engine)
    return {ix["name"] for table in ("sessions", "seen_requests")
            for ix in inspector.get_indexes(table)}


def test_migration_5_adds_the_indexes_a_database_of_the_edited_migration_2_lacks(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'mid.db'}"
    store = Store(url).open()
    wanted = {"ix_sessions_cert_fingerprint", "ix_seen_requests_seen_at"}
    try:
        assert wanted <= _index_names(store)
        # a database created between migration 2's landing and its edit: version 2 (and
        # later ones) recorded, the two indexes absent, migration 5 not yet applied
        with store.engine.begin() as conn:
            for name in sorted(wanted):
                conn.execute(sa.text(f"DROP INDEX {name}"))
            conn.execute(sa.delete(schema_version).where(schema_version.c.version == 5))
        assert not wanted & _index_names(store)
    finally:
        store.close()
    store = Store(url).open()
    try:
        assert wanted <= _index_names(store)
        assert store.version() == schema.SCHEMA_VERSION
        store.open()  # idempotent
        assert store.version() == schema.SCHEMA_VERSION
    finally:
        store.close()


# --- issue 16: migrations 7 and 8 create frozen shapes ----------------------------------
def _reached(apply: Callable[..., Any]) -> set[str]:
    """The module-level names a migration reaches (through the module's functions)."""
    names: set[str] = set()
    todo, done = [apply], set()
    while todo:
        fn = todo.pop()
        if fn.__name__ in done:
            continue
        done.add(fn.__name__)
        for name in _names(fn.__code__):
            names.add(name)
            obj = vars(schema).get(name)
            if inspect.isfunction(obj) and obj.__module__ == schema.__name__:
                todo.append(obj)
    return names


def test_no_migration_since_5_reaches_a_live_table() -> None:
    """A migration creates a frozen shape: the live tables (``schema.metadata``) change
    with the code, and a change of them is a new migration."""
    live = {id(t) for t in schema.metadata.tables.values()}
    for version, _, apply in MIGRATIONS:
        if version < 5:
            continue
        reached = _reached(apply)
        assert "metadata" not in reached, f"migration {version} uses the live metadata"
        tables = [n for n in reached if id(vars(schema).get(n)) in live]
        assert not tables, f"migration {version} uses the live tables {tables}"


def _ddl(tables: list[sa.Table], dialect: Any) -> dict[str, list[str]]:
    from sqlalchemy.schema import CreateIndex, CreateTable

    return {t.name: [str(CreateTable(t).compile(dialect=dialect)).strip(),
                     *sorted(str(CreateIndex(ix).compile(dialect=dialect))
                             for ix in t.indexes)]
            for t in tables}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_frozen_shapes_of_migrations_7_and_8_are_todays_tables(dialect: str) -> None:
    """Rewritten to frozen shapes before anything shipped: the same columns, keys and
    indexes as the live tables they replaced (compiled DDL, both dialects)."""
    from sqlalchemy.dialects import postgresql, sqlite

    d = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect]
    for shapes in (schema._v7_fm1_shapes, schema._v8_lists_shapes):
        frozen = shapes(sa.MetaData())
        live = [schema.metadata.tables[t.name] for t in frozen]
        assert _ddl(frozen, d) == _ddl(live, d)


@pytest.fixture(params=["sqlite", "pg"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from tests.server.conftest import pg_test_url

    drop = None
    if request.param == "pg":
        url, drop = pg_test_url()
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store(url).open()
    try:
        yield store
    finally:
        store.close()
        if drop is not None:
            drop()


def test_a_migrated_database_has_the_live_tables_columns_and_indexes(migrated: Store) -> None:
    inspector = sa.inspect(migrated.engine)
    for name, table in schema.metadata.tables.items():
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(name)}
        assert columns == {c.name: c.nullable for c in table.columns}, name
        indexes = {ix["name"]: tuple(ix["column_names"]) for ix in inspector.get_indexes(name)
                   if ix["name"] in {i.name for i in table.indexes}}
        assert indexes == {i.name: tuple(c.name for c in i.columns) for i in table.indexes}, name
