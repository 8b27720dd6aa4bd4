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
    7: "07da7004d9868a62c97d94c4c2fa220d12924f608d8500a79cc11a980707303b",
    8: "041b24e6e15136fd698f0a8e6e4b067533512f7c3523e2fcb835a7a40d7118a3",
    9: "e3ed169c62233adbcbb98ccd7c2a847fe89322a30587755ad4003f876bef9684",
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
