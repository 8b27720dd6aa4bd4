"""Issue 14, finding 5: security state (a block, a revocation, a session ended, a
consent, what the operations domain writes) is durable before it is acknowledged.

SQLite runs WAL with ``synchronous=NORMAL`` for the hot path's replay claims (rebuilt
from the audit log at start); every SQLAlchemy transaction commits with FULL, so the WAL
is fsync'd at that commit. A power loss cannot be staged in a test: the level in force at
each commit is checked instead, and a process killed with SIGKILL right after the
acknowledgement (before any checkpoint) leaves the rows there when reopened.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.store import Store
from siogw_api.timeutil import now_utc

FULL, NORMAL = 2, 1


def _level(dbapi_conn: Any) -> int:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA synchronous")
        return int(cur.fetchone()[0])
    finally:
        cur.close()


def test_security_state_commits_with_full_sync_and_claims_with_normal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'durable.db'}").open()
    try:
        store.add_user(user_id="anna", full_name="Anna", role="investigator")
        store.create_session(token_hash="t" * 64, user_id="anna", cert_fingerprint="f" * 64,
                             factor="cert", expires_at=now_utc() + _dt.timedelta(hours=1))
        levels: list[int] = []
        sa.event.listen(store.engine, "commit",
                        lambda conn: levels.append(_level(conn.connection.dbapi_connection)))
        store.set_user_status("anna", "blocked", "test")
        store.revoke("abcd", "keyCompromise")
        store.end_session("t" * 64)
        store.record_consent(user_id="anna", version="v1", text_sha256="0" * 64,
                             envelope_json=b"{}", cert_fingerprint="f" * 64,
                             signed_at=now_utc(), signed_at_astana="")
        with store.engine.begin() as conn:  # how the operations domain writes
            conn.execute(sa.text("UPDATE users SET status_reason = 'ops' WHERE user_id = 'anna'"))
        with store.pinned_connection():  # a query's end_session after a refusal
            store.session_context("t" * 64, consent_version="v1", at=now_utc())
            store.end_session("t" * 64)
            assert levels[-1] == FULL
            store.claim_request_id("r1", user_id="anna", kind="query")
            assert _level(store._pinned.dbapi_connection) == NORMAL
        assert levels and set(levels) == {FULL}, levels
    finally:
        store.close()


_CHILD = textwrap.dedent("""
    import sys
    from server.store import Store
    store = Store(sys.argv[1]).open()
    store.add_user(user_id="anna", full_name="Anna", role="investigator")
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()
    store.set_user_status("anna", "blocked", "stolen token")
    store.revoke("abcd", "keyCompromise", issuer="CN=Test CA")
    sys.stdout.write("ack\\n"); sys.stdout.flush()
    sys.stdin.readline()  # killed here
""")


def test_a_block_acknowledged_before_a_sigkill_is_there_after(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ack"
        wal = db.with_name(db.name + "-wal")
        assert wal.exists() and wal.stat().st_size > 0  # committed, not checkpointed
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    store = Store(url).open()
    try:
        user = store.get_user("anna")
        assert user is not None and user.status == "blocked"
        assert store.revocation("abcd", issuer="CN=Test CA") is not None
    finally:
        store.close()
