"""Store.session_context: the one read behind every authenticated call (real SQLite)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509

from server.store import Store
from server.store.certificates import ANY_ISSUER, PrefetchedRevocations, revoke_serial
from server.store.errors import ReplayDetected
from server.store.users import USER_ACTIVE, USER_BLOCKED, set_status
from siogw_api.timeutil import now_utc


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    s.add_user(user_id="u1", full_name="User One", role="analyst", phone="+77010000000")
    s.register_certificate("u1", b"not-a-real-der", serial_hex="0A", key_id="k" * 64)
    s.create_session(
        token_hash="h" * 64, user_id="u1", cert_fingerprint=_fp(), factor="sms",
        expires_at=now_utc() + _dt.timedelta(minutes=15),
    )
    yield s
    s.close()


def _fp() -> str:
    from server.store.certificates import fingerprint

    return fingerprint(b"not-a-real-der")


def test_unknown_token_is_none(store: Store) -> None:
    assert store.session_context("x" * 64, consent_version="v1", at=now_utc()) is None


def test_session_user_certificate_consent_in_one_read(store: Store) -> None:
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None
    assert ctx.session.user_id == "u1" and ctx.user is not None and ctx.user.active
    assert ctx.certificate is not None and ctx.certificate.serial_hex == "a"
    assert not ctx.consented and ctx.window is None and ctx.revocations == ()
    store.record_consent(
        user_id="u1", version="v1", text_sha256="0" * 64, envelope_json=b"{}",
        cert_fingerprint=_fp(), signed_at=now_utc(), signed_at_astana="",
    )
    assert store.session_context("h" * 64, consent_version="v1", at=now_utc()).consented  # type: ignore[union-attr]
    assert not store.session_context("h" * 64, consent_version="v2", at=now_utc()).consented  # type: ignore[union-attr]
    store.set_user_status("u1", "blocked", "test")
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None and ctx.user is not None and not ctx.user.active
    assert ctx.session.ended_at is not None


def test_open_maintenance_window_only_while_open(store: Store) -> None:
    now = now_utc()
    store.add_window(window_id="w1", starts_at=now + _dt.timedelta(hours=1),
                     ends_at=now + _dt.timedelta(hours=2), description="later")
    assert store.session_context("h" * 64, consent_version="v1", at=now).window is None  # type: ignore[union-attr]
    inside = now + _dt.timedelta(hours=1, minutes=1)
    ctx = store.session_context("h" * 64, consent_version="v1", at=inside)
    assert ctx is not None and ctx.window is not None and ctx.window.id == "w1"
    after = now + _dt.timedelta(hours=2)
    assert store.session_context("h" * 64, consent_version="v1", at=after).window is None  # type: ignore[union-attr]
    # Store.current_window agrees
    assert store.current_window(now) is None and store.current_window(after) is None
    open_ = store.current_window(inside)
    assert open_ is not None and open_.id == "w1" and open_.covers(inside)


def test_revocations_come_with_the_session_and_answer_like_the_db(store: Store) -> None:
    issuer = x509.Name.from_rfc4514_string("CN=Some CA,C=KZ")
    store.revoke("0a", "keyCompromise", issuer="CN=Other CA,C=KZ")
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None and len(ctx.revocations) == 1
    pre = PrefetchedRevocations(store, "0a", ctx.revocations)
    assert pre.lookup(issuer, 10) is None  # another issuer's serial 0a
    store.revoke("0a", "keyCompromise", issuer=ANY_ISSUER)
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None and len(ctx.revocations) == 2
    hit = PrefetchedRevocations(store, "0a", ctx.revocations).lookup(issuer, 10)
    assert hit is not None and hit.reason == "keyCompromise"
    # any other serial is looked up in the database
    store.revoke("0b", "superseded", issuer="CN=Some CA,C=KZ")
    assert pre.lookup(issuer, 11) is not None


def test_claim_request_id_is_unique(store: Store) -> None:
    store.claim_request_id("r1", user_id="u1", kind="query")
    with pytest.raises(ReplayDetected):
        store.claim_request_id("r1", user_id="u1", kind="query")


def test_an_operations_block_is_in_the_same_one_read(store: Store) -> None:
    """One home: the operations domain blocks by writing the ``users`` row the session
    read joins (server.store.users.set_status), so the read stays ONE statement and sees
    the block, and a revocation, at once."""
    # Count what SQLite itself runs (the session read bypasses SQLAlchemy's events).
    statements: list[str] = []
    store.engine.dispose()
    sa.event.listen(store.engine, "connect",
                    lambda dbapi_conn, _rec: dbapi_conn.set_trace_callback(statements.append))
    with store.engine.begin() as conn:  # what LifecycleService.block does in its transaction
        set_status(conn, "u1", USER_BLOCKED, "violation", now=now_utc(), block_kind="violation")
    statements.clear()
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None and ctx.user is not None and not ctx.user.active
    assert ctx.user.status_reason == "violation"
    assert ctx.session.ended_at is not None  # the block ended the session too
    with store.engine.begin() as conn:
        set_status(conn, "u1", USER_ACTIVE, "order 9", now=now_utc())
        revoke_serial(conn, "0a", ANY_ISSUER, "keyCompromise", now_utc())
    ctx = store.session_context("h" * 64, consent_version="v1", at=now_utc())
    assert ctx is not None and ctx.user is not None and ctx.user.active
    assert [r.reason for r in ctx.revocations] == ["keyCompromise"]
    reads = [s for s in statements if "FROM sessions" in s and "users" in s]
    assert len(reads) == 2  # one statement per session read, status included
    assert all(s.lstrip().upper().startswith("SELECT") for s in reads)


def test_wal_checkpoints_run_in_the_background_not_in_commits(tmp_path: Path) -> None:
    """SQLite: the threshold is high and a background thread checkpoints the WAL."""
    import time
    import uuid

    s = Store(f"sqlite:///{tmp_path / 'wal.db'}").open()
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 16384
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        s.add_user(user_id="w1", full_name="W", role="analyst", phone="+77010000000")
        for _ in range(300):
            s.claim_request_id(uuid.uuid4().hex, user_id="w1", kind="query")
        wal = tmp_path / "wal.db-wal"
        assert wal.stat().st_size > 0
        assert s.start_checkpointer(interval=0.05) and not s.start_checkpointer()
        deadline = time.monotonic() + 10
        while s.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.checkpoints >= 2
        with s.engine.connect() as conn:  # everything is in the database file now
            busy, frames, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            assert busy == 0 and frames == done
    finally:
        s.close()
    assert s._checkpointer is None  # stopped with the store
