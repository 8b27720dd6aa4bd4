"""server.prepared: the same answers as SQLAlchemy's execute, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as _dt
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit.sqlguard import NulCharacter, install_text_guard
from server.prepared import Prepared

meta = sa.MetaData()
things = sa.Table(
    f"prep_things_{secrets.token_hex(3)}", meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("n", sa.Integer),
)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    url = (f"sqlite:///{tmp_path / 'p.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    eng = install_text_guard(sa.create_engine(url))
    meta.create_all(eng)
    yield eng
    meta.drop_all(eng)
    eng.dispose()


def test_select_answers_like_sqlalchemy(engine: sa.Engine) -> None:
    at = _dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=_dt.UTC)
    insert = Prepared(engine, things.insert())
    for i in range(3):
        assert insert.run({"id": f"t{i}", "at": at + _dt.timedelta(days=i), "flag": i % 2 == 0,
                           "blob": bytes([i, 0, 255]), "n": None if i == 2 else i}) == 1
    stmt = (sa.select(things, sa.literal("x").label("lit"))
            .where(things.c.at >= sa.bindparam("since", type_=sa.DateTime(timezone=True)),
                   things.c.id != "nope")
            .order_by(things.c.id))
    prepared = Prepared(engine, stmt)
    with engine.connect() as conn:
        want = [tuple(r) for r in conn.execute(stmt, {"since": at + _dt.timedelta(days=1)})]
    got = prepared.all({"since": at + _dt.timedelta(days=1)})
    assert [tuple(r) for r in got] == want and len(want) == 2
    row = got[0]
    assert row.flag is False and row.blob == bytes([1, 0, 255]) and row.lit == "x"
    assert row.at.replace(tzinfo=None) == (at + _dt.timedelta(days=1)).replace(tzinfo=None)
    with pytest.raises(sa.exc.ArgumentError):
        prepared.all({})  # a required parameter is missing


def test_writes_commit_and_errors_come_from_the_driver(engine: sa.Engine) -> None:
    at = _dt.datetime(2026, 3, 1, tzinfo=_dt.UTC)
    insert = Prepared(engine, things.insert())
    insert.run({"id": "a", "at": at, "flag": True, "blob": None, "n": 1})
    with pytest.raises(engine.dialect.dbapi.IntegrityError):  # type: ignore[union-attr]
        insert.run({"id": "a", "at": at, "flag": True, "blob": None, "n": 1})
    with pytest.raises(NulCharacter):
        insert.run({"id": "b\x00", "at": at, "flag": True, "blob": None, "n": 1})
    with engine.connect() as conn:  # committed once; the failed ones left nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar() == 1


def test_text_statements_listeners_and_in_lists(engine: sa.Engine) -> None:
    at = _dt.datetime(2026, 3, 1, tzinfo=_dt.UTC)
    Prepared(engine, things.insert()).run({"id": "a", "at": at, "flag": True, "blob": None,
                                           "n": 7})
    seen: list[str] = []

    def listener(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        text = Prepared(engine, sa.text(f"SELECT id, n FROM {things.name} WHERE n = :n"))
        [row] = text.all({"n": 7})
        assert (row.id, row.n) == ("a", 7)  # named after the driver's columns
        assert text.all({"n": 8}) == []
        assert len(seen) == 2 and all(things.name in s for s in seen)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    with pytest.raises(sa.exc.ArgumentError, match="OR-ed equalities"):
        Prepared(engine, sa.select(things).where(things.c.id.in_(["a", "b"])))
