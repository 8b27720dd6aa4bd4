"""The synthetic dataset: deterministic, idempotent, consistent with the identifiers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.resources import (
    CATALOGUE,
    DEMO_ENTITY_BIN,
    DEMO_FOREIGNER_IIN,
    DEMO_PERSON_IIN,
    EmbeddedConnector,
    is_valid_bin,
    is_valid_iin,
    seed_dataset,
)
from server.resources import dataset as ds
from siogw_api.errors import StorageError
from tests.server.resources.dbutil import sqlite_engine


def test_demo_constants() -> None:
    assert DEMO_PERSON_IIN == "800415348216"
    assert DEMO_ENTITY_BIN == "120640313373"
    assert DEMO_FOREIGNER_IIN == "830902473058"
    assert is_valid_iin(DEMO_PERSON_IIN) and is_valid_iin(DEMO_FOREIGNER_IIN)
    assert is_valid_bin(DEMO_ENTITY_BIN)


def test_seed_is_idempotent_and_refuses_other_seed(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "a.db")
    assert seed_dataset(engine) is True
    with engine.connect() as c:
        before = c.execute(sa.select(sa.func.count()).select_from(ds.res_person)).scalar()
    assert seed_dataset(engine) is False
    with engine.connect() as c:
        after = c.execute(sa.select(sa.func.count()).select_from(ds.res_person)).scalar()
    assert before == after
    with pytest.raises(StorageError):
        seed_dataset(engine, seed=1)
    ds.drop_dataset(engine)
    assert seed_dataset(engine, seed=1) is True


def test_size_and_identifier_validity(sqlite_seeded: sa.Engine) -> None:
    with sqlite_seeded.connect() as c:
        iins = [r[0] for r in c.execute(sa.select(ds.res_person.c.iin))]
        bins = [r[0] for r in c.execute(sa.select(ds.res_entity.c.bin))]
        links = c.execute(sa.select(ds.res_link.c.src, ds.res_link.c.dst)).all()
        amounts = c.execute(sa.select(ds.res_pension_contribution.c.amount_kzt)).scalars().all()
    assert 250 <= len(iins) <= 500 and 80 <= len(bins) <= 150
    assert all(is_valid_iin(i) for i in iins)
    assert all(is_valid_bin(b) for b in bins)
    known = set(iins) | set(bins)
    assert all(s in known and d in known for s, d in links)
    assert amounts and all(a > 0 for a in amounts)


def _answers(engine: sa.Engine) -> dict[tuple[int, str], object]:
    conn = EmbeddedConnector(engine)
    out: dict[tuple[int, str], object] = {}
    for n, res in CATALOGUE.items():
        for key, value in (("iin", DEMO_PERSON_IIN), ("bin", DEMO_ENTITY_BIN),
                           ("iin", DEMO_FOREIGNER_IIN)):
            if key in res.parameters:
                out[(n, value)] = asyncio.run(conn.fetch(res, {key: value}))
    return out


def test_two_seeds_into_two_databases_are_identical() -> None:
    a, b = sqlite_engine(), sqlite_engine()
    seed_dataset(a)
    seed_dataset(b)
    with a.connect() as ca, b.connect() as cb:
        assert list(ds.dump_dataset(ca)) == list(ds.dump_dataset(cb))
    assert _answers(a) == _answers(b)


def test_different_seed_differs() -> None:
    a, b = sqlite_engine(), sqlite_engine()
    seed_dataset(a)
    seed_dataset(b, seed=ds.DEFAULT_SEED + 1)
    with a.connect() as ca, b.connect() as cb:
        assert dict(ds.dump_dataset(ca))["res_vehicle"] != dict(ds.dump_dataset(cb))["res_vehicle"]


@pytest.mark.pg
def test_sqlite_and_postgresql_give_the_same_answers(
    sqlite_seeded: sa.Engine, pg_seeded: sa.Engine
) -> None:
    assert _answers(sqlite_seeded) == _answers(pg_seeded)


@pytest.mark.pg
def test_concurrent_first_seeding_on_postgresql() -> None:
    """Replicas starting at once: exactly one seeds, the others see it done."""
    import threading

    from tests.server.resources.dbutil import drop_pg_schema, pg_schema_engine, pg_url

    admin, engine, schema = pg_schema_engine(pg_url())
    try:
        results: list[bool] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(seed_dataset(engine))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results) == [False, False, True]
        with engine.connect() as c:
            assert c.execute(sa.select(sa.func.count()).select_from(ds.res_meta)).scalar() == 1
            persons = sa.select(sa.func.count()).select_from(ds.res_person)
            assert c.execute(persons).scalar_one() > 250
    finally:
        drop_pg_schema(admin, engine, schema)
