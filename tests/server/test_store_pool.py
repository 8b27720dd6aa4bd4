"""Issue 14, finding 4: the pool is sized from the worker threads and a query's nested
reads and writes (the revocation lookup of an intermediate CA, ``end_session`` after a
refusal) run on its pinned connection, so 16 threads never run the pool dry."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.config import MAX_WORKER_THREADS
from server.store import Store
from server.store.base import BACKGROUND_CONNECTIONS, pool_size_for
from server.store.certificates import DbRevocationStore
from server.store.errors import DuplicateUser, ReplayDetected
from siogw_api.timeutil import now_utc
from tests.server.conftest import pg_test_url


@pytest.fixture(params=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "pg":
        url, drop = pg_test_url()
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'pool.db'}"


def _seed(store: Store) -> None:
    store.add_user(user_id="anna", full_name="Anna", role="investigator")
    store.create_session(token_hash="t" * 64, user_id="anna", cert_fingerprint="f" * 64,
                         factor="cert", expires_at=now_utc() + _dt.timedelta(hours=1))


def test_pool_size_follows_the_threads(db_url: str) -> None:
    store = Store(db_url, pool_size=pool_size_for(MAX_WORKER_THREADS)).open()
    try:
        assert store.engine.pool.size() == MAX_WORKER_THREADS + BACKGROUND_CONNECTIONS  # type: ignore[attr-defined]
    finally:
        store.close()


def test_nested_reads_and_writes_use_the_pinned_connection(db_url: str) -> None:
    store = Store(db_url).open()
    try:
        _seed(store)
        pool = store.engine.pool
        checkouts: list[int] = []
        sa.event.listen(store.engine, "checkout", lambda *a: checkouts.append(1))
        with store.pinned_connection():
            assert store.session_context("t" * 64, consent_version="v", at=now_utc())
            assert pool.checkedout() == 1  # type: ignore[attr-defined]
            # the intermediate CA's revocation lookup and end_session: no second checkout
            assert DbRevocationStore(store).lookup("CN=Intermediate", 0x1234) is None
            assert store.get_user("anna") is not None
            store.end_session("t" * 64)
            store.claim_request_id("r1", user_id="anna", kind="query")
        assert len(checkouts) == 1
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        session = store.get_session("t" * 64)
        assert session is not None and session.ended_at is not None  # committed
    finally:
        store.close()


def test_a_failed_write_on_the_pinned_connection_rolls_back_only_itself(db_url: str) -> None:
    store = Store(db_url).open()
    try:
        _seed(store)
        with store.pinned_connection():
            store.claim_request_id("r1", user_id="anna", kind="query")
            with pytest.raises(DuplicateUser):
                store.add_user(user_id="anna", full_name="Anna", role="investigator")
            store.end_session("t" * 64)
        session = store.get_session("t" * 64)
        assert session is not None and session.ended_at is not None
        with pytest.raises(ReplayDetected):  # the claim stayed
            store.claim_request_id("r1", user_id="anna", kind="query")
    finally:
        store.close()


@pytest.mark.slow
def test_sixteen_threads_each_holding_a_query_connection_do_not_run_dry() -> None:
    """16 worker threads (the most ``server.worker_threads`` allows), all inside a query
    at once, each doing the nested reads of the certificate check and an end_session:
    with SQLAlchemy's default 5 + 10 and a second checkout per nested read, the pool ran
    dry ("QueuePool limit reached") -- here the barrier broke after 20 s."""
    url, drop = pg_test_url()
    threads = MAX_WORKER_THREADS
    store = Store(url, pool_size=pool_size_for(threads)).open()
    try:
        _seed(store)
        barrier = threading.Barrier(threads, timeout=20)
        errors: list[BaseException] = []

        def query(i: int) -> None:
            try:
                with store.pinned_connection():
                    store.session_context("t" * 64, consent_version="v", at=now_utc())
                    barrier.wait()  # every thread holds its query's connection now
                    for serial in range(3):  # a chain's intermediates
                        DbRevocationStore(store).lookup(f"CN=CA {serial}", serial + 1)
                    store.end_session("x" * 64)
                    barrier.wait()
                    store.claim_request_id(f"r{i}", user_id="anna", kind="query")
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=query, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert not errors, errors
        assert all(not w.is_alive() for w in workers)
    finally:
        store.close()
        drop()
