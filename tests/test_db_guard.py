"""audit.sqlguard: a NUL character in any SQL parameter is bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from audit.sqlguard import NulCharacter, has_text_guard, install_text_guard
from siogw_api.errors import InputError


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'g.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    eng = install_text_guard(sa.create_engine(url))
    install_text_guard(eng)  # idempotent
    return eng


def test_nul_in_a_parameter_is_refused_before_the_statement_runs(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS t (v VARCHAR(40))"))
        conn.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": "plain"})
        for bad in ({"v": "a\x00b"}, [{"v": "ok"}, {"v": "\x00"}]):
            with pytest.raises(NulCharacter) as ei:
                conn.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), bad)
            assert isinstance(ei.value, InputError) and ei.value.reason_code == "NUL_CHARACTER"
        assert conn.execute(sa.text("SELECT v FROM t")).scalars().all() == ["plain"]
        # Bytes may hold any octet: only text is checked.
        assert conn.execute(sa.text("SELECT :b"), {"b": b"\x00"}).scalar() is not None


def test_the_gateway_store_and_audit_index_install_it(tmp_path: Path) -> None:
    from audit.index import AuditIndex
    from server.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}").open()
    try:
        with pytest.raises(NulCharacter):
            store.get_login("abc\x00")
    finally:
        store.close()
    index = AuditIndex(f"sqlite:///{tmp_path / 'i.db'}")
    try:
        assert has_text_guard(index.engine)
    finally:
        index.dispose()
