"""The session read behind every authenticated call stays an index lookup as tables grow.

Every call joins the session's certificate to its revocations by serial and looks for
an open maintenance window. Both tables only grow (a CA revokes for years; past windows
stay), and without an index each call scanned them: measured on SQLite with 20,000
revocations and 1,500 past windows, the read went from 20 to 1,100 microseconds.
Migration 2 adds the two indexes (and one on sessions by certificate, for revoking).
These tests fill the tables, check the answers are still right, and ask the database's
own planner (``EXPLAIN``) how it runs the statement the gateway sends, on SQLite and
PostgreSQL; and that a version 1 database is upgraded.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.store import Store
from server.store.certificates import fingerprint
from server.store.schema import SCHEMA_VERSION, maintenance, revocations, schema_version
from siogw_api.timeutil import now_utc
from tests.server.sqlplan import sqlite_plan, statements_sent

#: Hot tables that a scan of would grow with the data.
GROWING = ("revocations", "maintenance", "sessions", "users", "certificates", "consents")

TOKEN = "h" * 64
V2_INDEXES = ("ix_revocations_serial_hex", "ix_maintenance_ends_at", "ix_sessions_cert_fingerprint",
              "ix_seen_requests_seen_at")


def _fill(store: Store) -> None:
    """A user with a session; 400 revocations of other certificates and one of hers
    under another issuer; 300 windows that have ended and one open now."""
    now = now_utc()
    store.add_user(user_id="u1", full_name="User One", role="analyst", phone="+77010000000")
    store.register_certificate("u1", b"not-a-real-der", serial_hex="0A", key_id="k" * 64)
    store.create_session(
        token_hash=TOKEN, user_id="u1", cert_fingerprint=fingerprint(b"not-a-real-der"),
        factor="sms", expires_at=now + _dt.timedelta(minutes=15),
    )
    with store.engine.begin() as conn:
        conn.execute(revocations.insert(), [
            {"issuer": "CN=Some CA,C=KZ", "serial_hex": f"{i + 0x1000:x}",
             "reason": "superseded", "revoked_at": now}
            for i in range(400)
        ])
        conn.execute(maintenance.insert(), [
            {"id": f"past-{i}", "starts_at": now - _dt.timedelta(days=i + 1, hours=2),
             "ends_at": now - _dt.timedelta(days=i + 1), "description": "past",
             "created_at": now}
            for i in range(300)
        ])
    store.revoke("0a", "keyCompromise", issuer="CN=Other CA,C=KZ")
    store.add_window(window_id="now", starts_at=now - _dt.timedelta(minutes=5),
                     ends_at=now + _dt.timedelta(minutes=55), description="open")


def _session_read(store: Store) -> tuple[str, Any]:
    """Run the session read once; the SQL and parameters it sent to the driver."""
    with statements_sent(store.engine) as sent:
        ctx = store.session_context(TOKEN, consent_version="v1", at=now_utc())
    # the answer is still the right one with the tables full
    assert ctx is not None and ctx.certificate is not None
    assert [r.issuer for r in ctx.revocations] == ["CN=Other CA,C=KZ"]
    assert ctx.window is not None and ctx.window.id == "now"
    assert len(sent) == 1
    return sent[0]


def _sqlite_scans(store: Store) -> list[str]:
    return _sqlite_plan_scans(store, *_session_read(store))


def _sqlite_plan_scans(store: Store, sql: str, params: Any) -> list[str]:
    steps = sqlite_plan(store.engine, sql, params)
    return [s for s in steps if s.startswith("SCAN") and s.split()[1] in GROWING]


@pytest.fixture()
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    yield store
    store.close()


def test_sqlite_session_read_scans_no_growing_table(sqlite_store: Store) -> None:
    _fill(sqlite_store)
    assert _sqlite_scans(sqlite_store) == []


def test_sqlite_without_the_indexes_it_scanned(sqlite_store: Store) -> None:
    """The check above can fail: drop migration 2's indexes and the scans are back."""
    _fill(sqlite_store)
    with sqlite_store.engine.begin() as conn:
        for name in V2_INDEXES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
    scans = _sqlite_scans(sqlite_store)
    assert any("revocations" in s for s in scans), scans
    assert any("maintenance" in s for s in scans), scans


def test_a_version_1_database_gets_the_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url).open()
    _fill(store)
    # make it what version 1 left: no indexes, no row for migration 2
    with store.engine.begin() as conn:
        for name in V2_INDEXES:
            conn.execute(sa.text(f"DROP INDEX {name}"))
        conn.execute(schema_version.delete().where(schema_version.c.version >= 2))
    store.close()
    assert SCHEMA_VERSION >= 2
    upgraded = Store(url).open()
    try:
        assert upgraded.version() == SCHEMA_VERSION
        names = {ix["name"] for t in ("revocations", "maintenance", "sessions", "seen_requests")
                 for ix in sa.inspect(upgraded.engine).get_indexes(t)}
        assert set(V2_INDEXES) <= names
        assert _sqlite_scans(upgraded) == []
        # and the data survived the upgrade
        assert upgraded.session_context(TOKEN, consent_version="v1", at=now_utc()) is not None
    finally:
        upgraded.close()


def test_revoking_ends_the_sessions_by_index(sqlite_store: Store) -> None:
    _fill(sqlite_store)
    with statements_sent(sqlite_store.engine, "UPDATE sessions") as sent:
        sqlite_store.revoke("0a", "keyCompromise")
    assert len(sent) == 1
    ctx = sqlite_store.session_context(TOKEN, consent_version="v1", at=now_utc())
    assert ctx is not None and ctx.session.ended_at is not None  # it did end the session
    assert _sqlite_plan_scans(sqlite_store, *sent[0]) == []


def test_the_operations_schema_adds_new_indexes_to_existing_tables(tmp_path: Path) -> None:
    from server.ops import schema

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    try:
        schema.create_schema(engine)
        with engine.begin() as conn:  # what a database made before these indexes has
            conn.execute(sa.text("DROP INDEX ix_ops_alerts_record_seq"))
        schema.create_schema(engine)
        schema.create_schema(engine)  # and again: idempotent
        names = {ix["name"] for ix in sa.inspect(engine).get_indexes("ops_alerts")}
        assert "ix_ops_alerts_record_seq" in names
        # The certificates it lists by serial and user are the control plane's, indexed
        # by migrations 1 and 3 (the store's migrations run first).
        names = {ix["name"] for ix in sa.inspect(engine).get_indexes("certificates")}
        assert {"ix_certificates_serial_hex", "ix_certificates_user_id"} <= names
    finally:
        engine.dispose()


@pytest.mark.pg
def test_postgresql_session_read_uses_the_indexes() -> None:
    from tests.server.conftest import pg_test_url

    url, drop = pg_test_url()
    store = Store(url).open()
    try:
        _fill(store)
        sql, params = _session_read(store)
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            # Small tables are cheaper to scan, so the planner would: forbid that, and a
            # sequential scan remains only where no index can answer.
            cur.execute("SET enable_seqscan = off")
            cur.execute("ANALYZE")
            cur.execute("EXPLAIN " + sql, params)
            plan = "\n".join(str(row[0]) for row in cur.fetchall())
            raw.rollback()
        finally:
            raw.close()
        seq = [t for t in GROWING if f"Seq Scan on {t}" in plan]
        assert seq == [], plan
        # revocations has its primary key (issuer, serial) to walk whole instead of a
        # sequential scan: the lookups must go through migration 2's indexes by name
        assert "ix_revocations_serial_hex" in plan, plan
        assert "ix_maintenance_ends_at" in plan, plan
    finally:
        store.close()
        drop()
