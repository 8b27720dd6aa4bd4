"""Store.prune and the housekeeping thread: the tables that grow with every call stay
bounded, and nothing a check still needs is deleted (SQLite and PostgreSQL).

The replay guard is the one that matters: a request id may go only once no replay of it
can pass the freshness check any more. One test walks the worst cases through the
gateway's own freshness check (``server.auth.check_fresh``) with its clock moved.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.config import ConfigError, load_config
from server.store import Store
from server.store.errors import ReplayDetected
from server.store.housekeeping import KEEP_AT_LEAST
from server.store.schema import logins, seen_requests, sessions
from siogw_api.timeutil import now_utc
from tests.server.sqlplan import sqlite_plan, statements_sent

SKEW = 120


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
        yield s
        s.close()
        return
    from tests.server.conftest import pg_test_url

    url, drop = pg_test_url()
    s = Store(url).open()
    yield s
    s.close()
    drop()


def _claim(store: Store, request_id: str, at: _dt.datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(seen_requests.insert().values(
            request_id=request_id, user_id="u1", kind="query", seen_at=at))


def _session(store: Store, token_hash: str, expires_at: _dt.datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(sessions.insert().values(
            token_hash=token_hash, user_id="u1", cert_fingerprint="f" * 64, factor="sms",
            created_at=expires_at - _dt.timedelta(minutes=15), expires_at=expires_at))


def _login(store: Store, login_id: str, expires_at: _dt.datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(logins.insert().values(
            login_id=login_id, user_id="u1", cert_fingerprint="f" * 64, cert_der=b"x",
            challenge=b"c", state="issued", factor="sms", attempts=0,
            created_at=expires_at - _dt.timedelta(minutes=2), expires_at=expires_at))


def _ids(store: Store, column: sa.Column) -> set[str]:  # type: ignore[type-arg]
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(column)).scalars())


def test_prune_deletes_only_what_no_check_needs(store: Store) -> None:
    now = now_utc()
    day = KEEP_AT_LEAST
    _claim(store, "old", now - day - _dt.timedelta(minutes=1))
    _claim(store, "recent", now - day + _dt.timedelta(minutes=1))
    _claim(store, "now", now)
    _session(store, "s-old", now - day - _dt.timedelta(seconds=1))
    _session(store, "s-recent", now - _dt.timedelta(hours=1))
    _session(store, "s-live", now + _dt.timedelta(minutes=10))
    _login(store, "l-old", now - day - _dt.timedelta(seconds=1))
    _login(store, "l-live", now + _dt.timedelta(minutes=1))

    pruned = store.prune(clock_skew_seconds=SKEW, now=now)

    assert (pruned.request_ids, pruned.sessions, pruned.logins) == (1, 1, 1)
    assert pruned.total == 3 and "1 request id(s)" in str(pruned)
    assert _ids(store, seen_requests.c.request_id) == {"recent", "now"}
    assert _ids(store, sessions.c.token_hash) == {"s-recent", "s-live"}
    assert _ids(store, logins.c.login_id) == {"l-live"}
    # the ids left still guard against replay
    with pytest.raises(ReplayDetected):
        store.claim_request_id("recent", user_id="u1", kind="query")
    # and a second pass finds nothing more
    assert store.prune(clock_skew_seconds=SKEW, now=now).total == 0


@pytest.mark.parametrize("skew", [1, 120, 3600, 12 * 3600, 30 * 3600])
def test_a_pruned_request_id_can_never_be_fresh_again(
    store: Store, skew: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: a request signed ``skew`` seconds in the future (the latest
    created_at the gateway accepts), claimed now. At the first moment prune deletes its
    id, the gateway's own freshness check already refuses that created_at."""
    import server.context as context
    from server.errors import StaleRequest

    t0 = now_utc()
    created_at = t0 + _dt.timedelta(seconds=skew)
    _claim(store, "r", t0)
    # find the first whole second at which prune deletes the claim
    step = 1
    later = t0
    while store.prune(clock_skew_seconds=skew, now=later).request_ids == 0:
        later += _dt.timedelta(seconds=step)
        step = min(step * 2, 3600)
    lo, hi = later - _dt.timedelta(seconds=step), later  # deleted at hi, not at lo
    _claim(store, "r", t0)
    while (hi - lo).total_seconds() > 1:
        mid = lo + (hi - lo) / 2
        if store.prune(clock_skew_seconds=skew, now=mid).request_ids:
            hi = mid
            _claim(store, "r", t0)
        else:
            lo = mid
    monkeypatch.setattr(context, "now_utc", lambda: hi)
    with pytest.raises(StaleRequest):
        context.check_fresh(created_at.isoformat(), skew)
    # while the id is still kept, the same request could be fresh: the guard is needed
    monkeypatch.setattr(context, "now_utc", lambda: t0 + _dt.timedelta(seconds=2 * skew))
    context.check_fresh(created_at.isoformat(), skew)


def test_a_large_skew_keeps_request_ids_longer_than_a_day(store: Store) -> None:
    now = now_utc()
    skew = 24 * 3600  # fresh within a day either way: replays possible for two days
    _claim(store, "36h", now - _dt.timedelta(hours=36))
    _claim(store, "49h", now - _dt.timedelta(hours=49))
    assert store.prune(clock_skew_seconds=skew, now=now).request_ids == 1
    assert _ids(store, seen_requests.c.request_id) == {"36h"}


def test_prune_goes_in_chunks(store: Store) -> None:
    now = now_utc()
    old = now - KEEP_AT_LEAST - _dt.timedelta(hours=1)
    with store.engine.begin() as conn:
        conn.execute(seen_requests.insert(), [
            {"request_id": f"r{i}", "user_id": "u1", "kind": "query", "seen_at": old}
            for i in range(23)
        ])
    _claim(store, "keep", now)
    with statements_sent(store.engine, "DELETE FROM seen_requests") as statements:
        pruned = store.prune(clock_skew_seconds=SKEW, now=now, chunk=5)
    assert pruned.request_ids == 23
    assert len(statements) == 5  # 5 + 5 + 5 + 5 + 3
    assert _ids(store, seen_requests.c.request_id) == {"keep"}


def test_sqlite_prune_finds_old_request_ids_by_index(tmp_path: Path) -> None:
    """A day of request ids can be millions of rows: the chunk that prune deletes is
    found through the seen_at index, not by scanning them under the write lock."""
    s = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    try:
        now = now_utc()
        _claim(s, "old", now - KEEP_AT_LEAST - _dt.timedelta(hours=1))
        with statements_sent(s.engine, "DELETE FROM seen_requests") as sent:
            assert s.prune(clock_skew_seconds=SKEW, now=now).request_ids == 1
        steps = sqlite_plan(s.engine, *sent[0])
        assert not [x for x in steps if x.startswith("SCAN seen_requests")], steps
        assert any("ix_seen_requests_seen_at" in x for x in steps), steps
    finally:
        s.close()


def test_housekeeper_runs_at_start_and_stops_with_the_store(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    now = now_utc()
    _claim(s, "old", now - KEEP_AT_LEAST - _dt.timedelta(hours=1))
    assert not s.start_housekeeper(clock_skew_seconds=SKEW, interval=0)  # 0: off
    assert s.start_housekeeper(clock_skew_seconds=SKEW, interval=0.05)
    assert not s.start_housekeeper(clock_skew_seconds=SKEW, interval=0.05)  # one only
    deadline = time.monotonic() + 10
    while s.housekeeping_passes < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.housekeeping_passes >= 2
    assert _ids(s, seen_requests.c.request_id) == set()
    s.close()
    assert s._housekeeper is None
    passes = s.housekeeping_passes
    time.sleep(0.2)
    assert s.housekeeping_passes == passes  # stopped


def test_housekeeping_setting(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).limits.housekeeping_seconds == 600
    off = load_config(tmp_path, env={}, overrides={"limits": {"housekeeping_seconds": 0}})
    assert off.limits.housekeeping_seconds == 0
    with pytest.raises(ConfigError, match="housekeeping_seconds"):
        load_config(tmp_path, env={}, overrides={"limits": {"housekeeping_seconds": -1}})
