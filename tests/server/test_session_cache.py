"""The session cache (server.sessioncache) and the authentication epoch it rests on.

Over a real gateway (SQLite and PostgreSQL, real tokens and CA): a checked session is
reused while nothing changed, and every change that decides whether a session may act
(a block, a revocation in the database or on a CRL, a logout, a maintenance window) is
seen by the very next call although the session was cached. And at the store: the
triggers of migration 10 bump the epoch for every write to the tables the session read
joins, on both databases.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from server.context import token_hash
from server.sessioncache import CachedCheck, SessionCache
from server.store import Store
from server.store.schema import _EPOCH_TABLES
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, auth_pb2, common_pb2
from tests.server.conftest import Harness, bearer, rpc_error

UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def _cache(gateway: Harness) -> SessionCache[Any]:
    cache = gateway.gateway.session_cache
    assert cache is not None, "the session cache is on by default"
    return cache


def _cached(gateway: Harness, token: str) -> CachedCheck[Any] | None:
    return _cache(gateway)._entries.get(token_hash(token))


def _fresh_session(gateway: Harness, name: str) -> str:
    """A new logged-in, consented session of ``name`` that one query has put in the cache."""
    user = gateway.users[name]
    token = gateway.login(user).session_token
    gateway.consent(user, token)
    req, _ = gateway.query_request(user)
    gateway.query.Query(req, metadata=bearer(token))
    assert _cached(gateway, token) is not None
    return token


def _query_error(gateway: Harness, name: str, token: str) -> tuple[grpc.StatusCode, str, str]:
    req, _ = gateway.query_request(gateway.users[name])
    return rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))


def test_a_checked_session_is_reused_while_nothing_changes(gateway: Harness) -> None:
    token = _fresh_session(gateway, "alice")
    cache = _cache(gateway)
    entry = _cached(gateway, token)
    assert entry is not None
    hits = cache.hits
    for _ in range(3):
        req, _q = gateway.query_request(gateway.users["alice"])
        gateway.query.Query(req, metadata=bearer(token))
    # each query checks its session twice (admission, and before the answer is released)
    assert cache.hits - hits >= 6
    again = _cached(gateway, token)
    assert again is not None and again.epoch == entry.epoch
    # bounded by the session's expiry (and the chain's validity)
    session = entry.value
    assert entry.valid_until <= session.expires_at
    assert session.chain is not None and entry.valid_until <= session.chain.not_after


def test_a_block_is_seen_by_the_next_call(gateway: Harness) -> None:
    token = _fresh_session(gateway, "carl")
    olga = gateway.users["olga"]
    req = gateway.admin_request(olga, block_user=admin_pb2.BlockUser(user_id="carl",
                                                                      reason="dismissed"))
    gateway.admin.Execute(req, metadata=bearer(gateway.session("olga", consent=False)))
    assert _query_error(gateway, "carl", token)[0] == UNAUTH
    assert _cached(gateway, token) is None


def test_a_revocation_in_the_database_is_seen_by_the_next_call(gateway: Harness) -> None:
    dina, sam = gateway.users["dina"], gateway.users["sam"]
    token = _fresh_session(gateway, "dina")
    req = gateway.admin_request(sam, revoke_certificate=admin_pb2.RevokeCertificate(
        serial_hex=format(dina.cert.serial_number, "x"), reason="lost"))
    gateway.admin.Execute(req, metadata=bearer(gateway.session("sam", consent=False)))
    assert _query_error(gateway, "dina", token)[0] == UNAUTH


def test_a_logout_is_seen_by_the_next_call(gateway: Harness) -> None:
    token = _fresh_session(gateway, "bob")
    gateway.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    assert _query_error(gateway, "bob", token)[0] == UNAUTH


def test_a_maintenance_window_is_seen_and_bounds_the_cache(gateway: Harness) -> None:
    token = _fresh_session(gateway, "alice")
    olga = gateway.users["olga"]
    admin_token = gateway.session("olga", consent=False)
    # A window in 5 minutes (before the session expires): the entry is re-read and now
    # ends when the window opens.
    later = now_utc().replace(microsecond=0) + dt.timedelta(minutes=5)
    windows = []
    for start, end in ((later, later + dt.timedelta(hours=1)),
                       (now_utc() - dt.timedelta(seconds=5), now_utc() + dt.timedelta(hours=1))):
        window = common_pb2.MaintenanceWindow(
            id=f"mw-{secrets.token_hex(3)}", starts_at=astana_iso(start),
            ends_at=astana_iso(end), description="cache test", urgent=True)
        windows.append(window.id)
        gateway.admin.Execute(gateway.admin_request(
            olga, publish_maintenance=admin_pb2.PublishMaintenance(window=window)),
            metadata=bearer(admin_token))
        if len(windows) == 1:
            req, _ = gateway.query_request(gateway.users["alice"])
            gateway.query.Query(req, metadata=bearer(token))
            entry = _cached(gateway, token)
            assert entry is not None and entry.valid_until == later
    try:
        code, reason, _msg = _query_error(gateway, "alice", token)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "MAINTENANCE")
        assert _cached(gateway, token) is None  # a session in an open window is not kept
    finally:
        from server.store.schema import maintenance

        with gateway.gateway.store.engine.begin() as conn:
            conn.execute(sa.delete(maintenance).where(maintenance.c.id.in_(windows)))
    req, _ = gateway.query_request(gateway.users["alice"])
    gateway.query.Query(req, metadata=bearer(token))


def test_a_revocation_on_a_new_crl_is_seen_by_the_next_call(gateway: Harness) -> None:
    """A CRL lives in memory, not in the database: it is checked on every cached call."""
    alice = gateway.users["alice"]
    token = _fresh_session(gateway, "alice")
    gateway.ca.revoke(alice.cert.serial_number, "keyCompromise")
    gateway.ca.publish_crl()
    code, reason, _ = _query_error(gateway, "alice", token)
    assert (code, reason) == (UNAUTH, "REVOKED")
    assert _cached(gateway, token) is None


def test_a_future_dated_revocation_keeps_the_session_out_of_the_cache(gateway: Harness) -> None:
    """It applies later without a write, so the epoch cannot announce it."""
    bob = gateway.users["bob"]
    store = gateway.gateway.store
    store.revoke(format(bob.cert.serial_number, "x"), "superseded",
                 at=now_utc() + dt.timedelta(days=1))
    token = gateway.login(bob).session_token
    gateway.consent(bob, token)
    req, _ = gateway.query_request(bob)
    gateway.query.Query(req, metadata=bearer(token))  # not in force yet: answered
    assert _cached(gateway, token) is None


# --- the store: the epoch and its triggers ---------------------------------------------------
def test_every_change_of_a_session_read_table_bumps_the_epoch(store: Store) -> None:
    now = now_utc()
    steps = [
        lambda: store.add_user(user_id="u1", full_name="U One", role="analyst",
                               phone="+77010000000"),
        lambda: store.register_certificate("u1", b"der", serial_hex="0A", key_id="k" * 64),
        lambda: store.create_session(token_hash="h" * 64, user_id="u1", cert_fingerprint="f",
                                     factor="sms", expires_at=now + dt.timedelta(minutes=5)),
        lambda: store.record_consent(user_id="u1", version="v1", text_sha256="0" * 64,
                                     envelope_json=b"{}", cert_fingerprint="f", signed_at=now,
                                     signed_at_astana=""),
        lambda: store.add_window(window_id="w1", starts_at=now + dt.timedelta(hours=1),
                                 ends_at=now + dt.timedelta(hours=2), description="d"),
        lambda: store.cancel_window("w1", cancelled_by="olga", reason="moved"),
        lambda: store.revoke("0a", "keyCompromise"),
        lambda: store.end_session("h" * 64),
        lambda: store.set_user_status("u1", "blocked", "test"),
    ]
    seen = [store.auth_epoch()]
    for step in steps:
        step()
        seen.append(store.auth_epoch())
    assert all(b > a for a, b in itertools.pairwise(seen)), seen


def test_every_session_read_table_has_its_triggers(store: Store) -> None:
    """Also the writes no store method makes today (a DELETE by hand, housekeeping)."""
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            names = {r[0] for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            want = {f"siogw_epoch_{t}_{op}" for t in _EPOCH_TABLES
                    for op in ("INSERT", "UPDATE", "DELETE")}
        else:
            names = {r[0] for r in conn.exec_driver_sql(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
            want = {f"siogw_epoch_{t}" for t in _EPOCH_TABLES}
    assert want <= names
    before = store.auth_epoch()
    from server.store.schema import maintenance

    with store.engine.begin() as conn:
        conn.execute(maintenance.insert().values(
            id="w9", starts_at=now_utc(), ends_at=now_utc() + dt.timedelta(hours=1),
            description="by hand", created_at=now_utc()))
        conn.execute(sa.delete(maintenance).where(maintenance.c.id == "w9"))
    assert store.auth_epoch() >= before + 2 if store.engine.dialect.name == "sqlite" \
        else store.auth_epoch() > before


def test_an_uncommitted_change_does_not_move_the_epoch(store: Store) -> None:
    store.add_user(user_id="u2", full_name="U Two", role="analyst", phone="+77010000002")
    before = store.auth_epoch()
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        store_users = sa.table("users", sa.column("user_id"), sa.column("status"))
        conn.execute(sa.update(store_users).where(store_users.c.user_id == "u2")
                     .values(status="blocked"))
        raise RuntimeError("rolled back")
    assert store.auth_epoch() == before


# --- the cache itself ---------------------------------------------------------------------
def test_the_cache_drops_stale_entries_and_stays_bounded() -> None:
    cache: SessionCache[str] = SessionCache(2)
    now = now_utc()
    soon = now + dt.timedelta(seconds=10)
    cache.put("a", CachedCheck(epoch=1, valid_until=soon, trust_store=None, value="A"))
    assert cache.get("a", 1, now) is not None
    assert cache.get("a", 2, now) is None and len(cache) == 0  # another epoch: dropped
    cache.put("a", CachedCheck(epoch=1, valid_until=soon, trust_store=None, value="A"))
    assert cache.get("a", 1, soon) is None  # the clock reached valid_until
    for key in "bcd":
        cache.put(key, CachedCheck(epoch=1, valid_until=soon, trust_store=None, value=key))
    assert len(cache) == 2 and cache.get("b", 1, now) is None  # least recently used gone
    with pytest.raises(ValueError):
        SessionCache(0)
