"""The Reports index: rebuilt from the log, same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as _dt
import secrets
from pathlib import Path

import pytest

from audit import AuditConfig, AuditLog, AuditRecord
from audit.index import AuditIndex
from siogw_api.errors import StorageError
from tests.audit.conftest import ORIGIN, rec


def _check_index(index: AuditIndex, log_dir: Path) -> None:
    assert index.rebuild(log_dir) == 23
    assert index.count() == 23
    assert index.rebuild(log_dir) == 23  # idempotent: rebuilt, not appended
    assert index.count() == 23
    rows = index.search(actor="user3")
    assert [r.seq for r in rows] == [3, 10, 17]
    r = rows[0]
    assert (r.event, r.outcome, r.resource, r.basis, r.task, r.request_id) == (
        "query", "success", "4", "financial monitoring", "T-3", "r3")
    assert r.cert_fingerprint == "ab" * 32 and len(r.leaf_hash) == 64
    assert r.time.tzinfo is not None
    everything = index.search()
    mid = everything[11].time
    later = index.search(since=mid)
    assert later and all(x.time >= mid for x in later) and later[0].seq <= 11
    assert index.search(until=everything[0].time) == []
    assert index.search(event="login") == []


def test_index_sqlite(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_dir, _, _ = populated
    index = AuditIndex(f"sqlite:///{tmp_path / 'ix.db'}")
    try:
        _check_index(index, log_dir)
    finally:
        index.dispose()


@pytest.mark.pg
def test_index_postgresql(populated, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    log_dir, _, _ = populated
    index = AuditIndex(pg_url, table_prefix=f"t{secrets.token_hex(4)}_")
    try:
        _check_index(index, log_dir)
    finally:
        index.drop()
        index.dispose()


def test_index_follows_the_log_not_the_reverse(tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    lg = AuditLog.open(tmp_path / "log", signer, ORIGIN, AuditConfig())
    try:
        lg.append_sync(AuditRecord(actor="op", event="operator", outcome="success",
                                   details={"action": "block", "request_id": "x"}))
        lg.append_sync(rec(1))
    finally:
        lg.close()
    index = AuditIndex(f"sqlite:///{tmp_path / 'ix.db'}")
    try:
        assert index.rebuild(tmp_path / "log") == 2
        assert index.search(event="operator")[0].request_id == "x"
        assert index.search(since=_dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)) == []
        from audit.archive import iter_archive_records

        # Incremental add of records already there is refused by the primary key.
        with pytest.raises(StorageError):
            index.add(list(iter_archive_records(tmp_path / "log"))[:1])
        assert index.count() == 2
    finally:
        index.dispose()
    with pytest.raises(StorageError):
        AuditIndex("sqlite:///x.db", table_prefix="bad prefix;")


def test_add_commits_batch_by_batch(populated, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A long catch-up never holds SQLite's write lock for more than one batch."""
    import sqlalchemy as sa

    import audit.index as ix
    from audit.archive import iter_archive_records

    log_dir, _keys, _receipts = populated  # 23 records
    monkeypatch.setattr(ix, "_BATCH", 5)
    index = AuditIndex(f"sqlite:///{tmp_path / 'ix.db'}")
    index.create()
    commits: list[int] = []
    sa.event.listen(index.engine, "commit", lambda _conn: commits.append(1))
    try:
        assert index.add(iter_archive_records(log_dir)) == 23
    finally:
        index.dispose()
    assert len(commits) == 5  # 5 + 5 + 5 + 5 + 3 rows


# --- issue 14, finding 7: the index heals its gaps; its pool survives killed backends ------
def test_heal_adds_the_seqs_missing_below_the_top(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import delete as sa_delete

    log_dir, _, _ = populated
    index = AuditIndex(f"sqlite:///{tmp_path / 'ix.db'}")
    try:
        assert index.rebuild(log_dir) == 23
        assert index.missing_seqs() == [] and index.heal(log_dir) == 0
        with index.engine.begin() as conn:
            conn.execute(sa_delete(index.table).where(index.table.c.seq.in_([0, 7, 8, 21])))
        assert index.missing_seqs() == [0, 7, 8, 21]
        assert index.heal(log_dir) == 4
        assert index.missing_seqs() == [] and index.count() == 23
        assert [r.seq for r in index.search(actor="user0")] == [0, 7, 14, 21]
    finally:
        index.dispose()


@pytest.mark.pg
def test_a_read_after_the_backend_was_terminated_reconnects(populated, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    log_dir, _, _ = populated
    index = AuditIndex(pg_url, table_prefix=f"t{secrets.token_hex(4)}_")
    killer = create_engine(pg_url)
    try:
        assert index.rebuild(log_dir) == 23
        with index.engine.connect() as conn:  # the pooled connection the next read takes
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.connect() as conn:  # only this index's own backend
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        assert index.count() == 23  # pre-ping: a new connection, not an error
    finally:
        killer.dispose()
        index.drop()
        index.dispose()
