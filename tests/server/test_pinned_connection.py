"""``Store.pinned_connection``: a query's session read and replay claim on one pooled
connection (one pre-ping and one reset instead of two), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.store import Store
from server.store.errors import ReplayDetected
from server.store.schema import seen_requests
from siogw_api.timeutil import now_utc
from tests.server.conftest import pg_test_url


@pytest.fixture(params=["sqlite", "pg"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    drop = None
    if request.param == "pg":
        db_url, drop = pg_test_url()
    else:
        db_url = f"sqlite:///{tmp_path / 'pin.db'}"
    st = Store(db_url).open()
    yield st
    st.close()
    if drop is not None:
        drop()


def _checkouts(store: Store) -> list[int]:
    seen: list[int] = []
    sa.event.listen(store.engine, "checkout", lambda *a: seen.append(1))
    return seen


def _read_and_claim(store: Store, request_id: str) -> None:
    assert store.session_context("no-such-token", consent_version="v", at=now_utc()) is None
    store.claim_request_id(request_id, user_id="anna", kind="query")


def _claimed(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(seen_requests.c.request_id)).scalars())


def test_one_checkout_for_the_read_and_the_claim(store: Store) -> None:
    seen = _checkouts(store)
    _read_and_claim(store, "r1")
    assert len(seen) == 2  # unpinned: one connection per statement
    seen.clear()
    with store.pinned_connection():
        _read_and_claim(store, "r2")
        with store.pinned_connection():  # nested: the same connection
            store.claim_request_id("r3", user_id="anna", kind="query")
    assert len(seen) == 1
    assert _claimed(store) == {"r1", "r2", "r3"}  # committed, seen by other connections


def test_a_replay_inside_the_block_leaves_the_connection_usable(store: Store) -> None:
    store.claim_request_id("used", user_id="anna", kind="query")
    with store.pinned_connection():
        with pytest.raises(ReplayDetected):
            _read_and_claim(store, "used")
        _read_and_claim(store, "fresh")  # rolled back, then fine
    with pytest.raises(RuntimeError), store.pinned_connection():
        _read_and_claim(store, "then-refused")
        raise RuntimeError("a later check refuses the query")
    assert _claimed(store) == {"used", "fresh", "then-refused"}
    with store.pinned_connection():  # the pool's connection is clean again
        _read_and_claim(store, "after")
    assert "after" in _claimed(store)
