"""The audit log writer: receipts, proofs, sealing, recovery, fail-closed, rotation."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from audit import AuditLog, AuditRecord, AuditUnavailable, MalformedRecord, verify_archive
from audit.archive import iter_archive_records
from audit.keys import read_history
from audit.segments import MAGIC
from signing import Signer
from signing.errors import CheckpointError
from signing.merkle import verify_consistency, verify_inclusion
from signing.note import open_checkpoint
from siogw_api.errors import AuditError, ConfigError, SigningError
from tests.audit.conftest import ORIGIN, rec, soft_signer

ROOT = Path(__file__).resolve().parents[2]


def test_receipts_proofs_and_seals(open_log: Callable[..., AuditLog], tmp_path: Path) -> None:
    lg = open_log(segment_max_records=7)
    receipts = [lg.append_sync(rec(i)) for i in range(10)]
    cp1, _ = open_checkpoint(lg.checkpoint().note, lg.trusted_keys(), origin=ORIGIN)

    async def burst() -> list:
        return await asyncio.gather(*(lg.append(rec(i)) for i in range(10, 60)))

    receipts += asyncio.run(burst())
    assert [r.seq for r in receipts] == list(range(60))
    assert all(r.tree_size > r.seq for r in receipts)
    cp2, _ = open_checkpoint(lg.checkpoint().note, lg.trusted_keys(), origin=ORIGIN)
    assert cp2.size == 60
    for r in receipts:
        proof = lg.inclusion_proof(r.seq, cp2.size)
        verify_inclusion(r.leaf_hash, r.seq, cp2.size, proof.hashes, cp2.root_hash)
    cons = lg.consistency_proof(cp1.size, cp2.size)
    verify_consistency(cp1.size, cp2.size, cons.hashes, cp1.root_hash, cp2.root_hash)
    health = lg.health()
    assert health.state == "ok"
    assert health.sealed_segments + health.pending_seals == 60 // 7
    keys = lg.trusted_keys()
    lg.close()
    seen: list[tuple[int, int, str]] = []
    report = verify_archive(tmp_path / "log", keys, origin=ORIGIN,
                            progress=lambda r, s, name: seen.append((r, s, name)))
    assert report.tree_size == 60 and report.root_hash == cp2.root_hash
    assert seen[0] == (7, 1, "seg-00000001.log.gz") and seen[-1][0] == 60
    assert len(seen) == report.sealed_segments == 9  # sealed at close, no live tail
    for p in (tmp_path / "log" / "archive").glob("seg-*"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o400, p
    bodies = [b for b, _ in iter_archive_records(tmp_path / "log")]
    assert b'"time":"' in bodies[0] and b"+05:00" in bodies[0]


def test_reopen_continues_and_refuses_second_writer(
    open_log: Callable[..., AuditLog], tmp_path: Path, signer: Signer
) -> None:
    lg = open_log(segment_max_records=5)
    for i in range(12):
        lg.append_sync(rec(i))
    with pytest.raises(AuditError, match="another process"):
        AuditLog.open(tmp_path / "log", signer, ORIGIN)
    old_root = lg.checkpoint().checkpoint
    lg.close()
    lg2 = open_log(segment_max_records=5)
    assert lg2.append_sync(rec(12)).seq == 12
    cp, _ = open_checkpoint(lg2.checkpoint().note, lg2.trusted_keys())
    proof = lg2.consistency_proof(old_root.size)
    verify_consistency(old_root.size, cp.size, proof.hashes, old_root.root_hash, cp.root_hash)
    lg2.close()
    assert verify_archive(tmp_path / "log", lg2.trusted_keys()).tree_size == 13


def test_oversize_and_bad_records_are_refused(open_log: Callable[..., AuditLog]) -> None:
    lg = open_log(max_record_bytes=512)
    with pytest.raises(MalformedRecord):
        lg.append_sync(rec(0, blob="x" * 1000))
    with pytest.raises(MalformedRecord):
        AuditRecord(actor="a", event="query", outcome="success", details={"f": 1.5})
    with pytest.raises(MalformedRecord):
        AuditRecord(actor="", event="query", outcome="success")
    assert lg.append_sync(rec(1)).seq == 0
    assert lg.health().state == "ok"


def test_torn_tail_is_truncated_and_recorded(
    open_log: Callable[..., AuditLog], tmp_path: Path
) -> None:
    lg = open_log()
    receipts = [lg.append_sync(rec(i)) for i in range(5)]
    lg.close()  # seals segment 1; a crash then leaves a torn start of segment 2
    live = tmp_path / "log" / "live" / "seg-00000002.log"
    live.write_bytes(MAGIC + b"\x00\x00\x01\x00garbage-torn")
    lg = open_log()
    assert lg.append_sync(rec(99)).seq == 6  # seq 5 is the audit.recovered record
    assert [lg.leaf_hash(r.seq) for r in receipts] == [r.leaf_hash for r in receipts]
    assert list((tmp_path / "log" / "torn").iterdir())
    keys = lg.trusted_keys()
    lg.close()
    records = [r for _, r in iter_archive_records(tmp_path / "log")]
    assert records[5].event == "audit.recovered"
    assert records[5].details["cut_bytes"] == 16
    verify_archive(tmp_path / "log", keys)


def test_interrupted_seal_is_redone(open_log: Callable[..., AuditLog], tmp_path: Path) -> None:
    lg = open_log()
    for i in range(4):
        lg.append_sync(rec(i))
    lg.close()
    live = tmp_path / "log" / "live" / "seg-00000001.log"
    # Crash after the .gz was written but before the seal.
    gz = tmp_path / "log" / "archive" / "seg-00000001.log.gz"
    seal = tmp_path / "log" / "archive" / "seg-00000001.seal"
    seal.chmod(0o600)
    seal.unlink()
    live.write_bytes(gzip.decompress(gz.read_bytes()))
    (tmp_path / "log" / "archive" / "seg-00000001.seal.tmp").write_bytes(b"partial")
    lg = open_log()
    saved = live.read_bytes()
    lg.seal_now()
    lg.close()
    # Crash after the seal but before the live file was removed.
    live.write_bytes(saved)
    lg = open_log()
    assert not live.exists()
    assert lg.append_sync(rec(5)).seq == 4
    keys = lg.trusted_keys()
    lg.close()
    report = verify_archive(tmp_path / "log", keys)
    assert report.sealed_segments == 2 and report.tree_size == 5  # 0-3, then 4 at close


class FlakySigner(Signer):
    """Test stand-in: wraps a real signer and fails while ``broken`` is set."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.broken = True

    @property
    def algorithm(self):  # type: ignore[no-untyped-def]
        return self.inner.algorithm

    @property
    def public_key(self):  # type: ignore[no-untyped-def]
        return self.inner.public_key

    def sign(self, payload: bytes) -> bytes:
        if self.broken:
            raise SigningError("token removed")
        return self.inner.sign(payload)


def _wait_for(predicate: Callable[[], bool]) -> None:
    """Wait for the sealer thread to get somewhere (generous bound, not a timing test)."""
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, "sealer never got there"
        time.sleep(0.01)


def test_signer_failure_within_grace_degrades_then_recovers(
    open_log: Callable[..., AuditLog], tmp_path: Path
) -> None:
    flaky = FlakySigner(soft_signer())
    lg = open_log(sig=flaky, segment_max_records=3, seal_grace_seconds=3600,
                  seal_retry_seconds=0)
    receipts = [lg.append_sync(rec(i)) for i in range(8)]  # appends go on meanwhile
    assert receipts[-1].seq == 7
    _wait_for(lambda: lg.health().state == "degraded")
    h = lg.health()
    assert "token removed" in (h.reason or "")
    assert h.sealed_segments == 0 and h.pending_seals == 2 and h.live_records == 2
    with pytest.raises(AuditError) as info:
        lg.seal_now(timeout=60)  # the retry loop reports the signer's error
    assert "token removed" in info.value.diagnostics()
    flaky.broken = False
    lg.seal_now(timeout=60)
    h = lg.health()
    assert h.state == "ok" and h.sealed_segments == 3 and h.pending_seals == 0
    keys = lg.trusted_keys()
    lg.close()
    assert verify_archive(tmp_path / "log", keys).sealed_segments == 3


def test_rolled_segments_left_unsealed_are_sealed_at_next_open(
    open_log: Callable[..., AuditLog], tmp_path: Path, signer: Signer
) -> None:
    flaky = FlakySigner(signer)
    lg = open_log(sig=flaky, segment_max_records=2, seal_grace_seconds=3600)
    for i in range(7):
        lg.append_sync(rec(i))
    lg.close()  # three rolled segments could not be sealed
    assert len(list((tmp_path / "log" / "live").iterdir())) == 4
    keys = read_history(tmp_path / "log" / "archive" / "keys.json")
    assert verify_archive(tmp_path / "log", keys).live_records == 7
    lg = open_log()  # the same key, now working
    lg.seal_now(timeout=60)
    assert lg.health().sealed_segments == 4
    lg.close()
    assert verify_archive(tmp_path / "log", keys).sealed_segments == 4


def test_signer_failure_past_grace_fails_closed(open_log: Callable[..., AuditLog]) -> None:
    flaky = FlakySigner(soft_signer())
    lg = open_log(sig=flaky, segment_max_records=2, seal_grace_seconds=0)
    lg.append_sync(rec(0))
    lg.append_sync(rec(1))  # acknowledged (durable); sealing then fails past grace
    _wait_for(lambda: lg.health().state == "failed")
    with pytest.raises(AuditUnavailable, match="grace"):
        lg.append_sync(rec(2))
    h = lg.health()
    assert "token removed" in (h.reason or "")
    assert h.tree_size == 2


class HangingSigner(FlakySigner):
    """Test stand-in: ``sign`` blocks (a wedged token) until ``release`` is set."""

    def __init__(self, inner: Signer) -> None:
        super().__init__(inner)
        self.broken = False
        self.hang = False
        self.release = threading.Event()

    def sign(self, payload: bytes) -> bytes:
        if self.hang:
            self.release.wait()
        return self.inner.sign(payload)


def test_hung_signer_fails_closed_after_grace(open_log: Callable[..., AuditLog]) -> None:
    hanging = HangingSigner(soft_signer())
    lg = open_log(sig=hanging, segment_max_records=2, seal_grace_seconds=0.2)
    hanging.hang = True
    lg.append_sync(rec(0))
    lg.append_sync(rec(1))  # rolls; the sealer is now stuck in sign()
    try:
        _wait_for(lambda: lg.health().state == "failed")
        assert "not returned" in (lg.health().reason or "")
        with pytest.raises(AuditUnavailable):
            lg.append_sync(rec(2))
    finally:
        hanging.release.set()


def test_disk_full_fails_closed(tmp_path: Path) -> None:
    """A real write error: the file-size limit (EFBIG) stands in for a full disk."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from audit import AuditLog, AuditConfig, AuditUnavailable
        from tests.audit.conftest import soft_signer, rec
        lg = AuditLog.open({str(tmp_path / "log")!r}, soft_signer(), "o")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        acked = 0
        try:
            for i in range(10000):
                lg.append_sync(rec(i))
                acked += 1
        except AuditUnavailable as exc:
            print("UNAVAILABLE", acked, exc.reason)
            print("HEALTH", lg.health().state, lg.health().reason)
            try:
                lg.append_sync(rec(0))
            except AuditUnavailable:
                print("STILL-FAILED yes")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert "UNAVAILABLE" in out.stdout, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    acked = int(lines["UNAVAILABLE"].split()[0])
    assert 0 < acked < 10000
    # The reason is our wording (health and GetServiceStatus show it to anyone); the
    # OS's own text goes only to the operator's log (issue 13, defect 14).
    assert lines["HEALTH"] == "failed cannot write the audit segment", lines["HEALTH"]
    assert "File too large" in out.stderr
    assert "STILL-FAILED" in out.stdout
    # Every acknowledged record survived; the torn tail is cut at reopen.
    lg = AuditLog.open(tmp_path / "log", soft_signer(), "o")
    try:
        assert lg.tree_size >= acked
    finally:
        lg.close()


def test_key_rotation_keeps_old_seals_valid(
    open_log: Callable[..., AuditLog], tmp_path: Path
) -> None:
    a, b = soft_signer(), soft_signer()
    lg = open_log(sig=a, segment_max_records=4)
    for i in range(6):
        lg.append_sync(rec(i))
    lg.close()
    lg = open_log(sig=b, segment_max_records=4)
    for i in range(6, 12):
        lg.append_sync(rec(i))
    lg.close()
    history = read_history(tmp_path / "log" / "archive" / "keys.json")
    assert [k.key_id for k in history] == [a.key_id, b.key_id]
    assert history[0].retired and not history[1].retired
    assert history[1].valid_from_size == 6  # the last seal made with key a (at close)
    report = verify_archive(tmp_path / "log", history)
    assert report.sealed_segments == 4  # 0-3, 4-5 (close); 6-9, 10-12 (close) under b
    rotated = [r for _, r in iter_archive_records(tmp_path / "log")
               if r.event == "audit.key_rotated"]
    assert rotated and rotated[0].details["previous_key_id"] == a.key_id
    with pytest.raises(CheckpointError, match=r"seg-00000001\.seal.*no signature"):
        verify_archive(tmp_path / "log", history[1:])
    with pytest.raises(ConfigError, match="retired"):
        AuditLog.open(tmp_path / "log", a, ORIGIN)


def test_seals_signed_by_softhsm_key(ec_token_key, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lg = AuditLog.open(tmp_path / "log", ec_token_key.signer, ORIGIN)
    try:
        for i in range(5):
            lg.append_sync(rec(i))
        lg.seal_now()
        cp, key = open_checkpoint(lg.checkpoint().note, lg.trusted_keys(), origin=ORIGIN)
        assert key.key_id == ec_token_key.signer.key_id and cp.size == 5
        keys = lg.trusted_keys()
    finally:
        lg.close()
    report = verify_archive(tmp_path / "log", keys, origin=ORIGIN)
    assert report.sealed_segments == 1
    assert os.path.exists(tmp_path / "log" / "archive" / "seg-00000001.seal")


def test_lost_merkle_levels_are_rebuilt_from_segments(
    open_log: Callable[..., AuditLog], tmp_path: Path
) -> None:
    lg = open_log(segment_max_records=4)
    receipts = [lg.append_sync(rec(i)) for i in range(11)]
    lg.seal_now(timeout=60)
    lg.close()
    for level in (tmp_path / "log" / "tree").iterdir():
        level.write_bytes(b"")  # derived data lost
    lg = open_log(segment_max_records=4)
    cp, _ = open_checkpoint(lg.checkpoint().note, lg.trusted_keys())
    for r in receipts:
        p = lg.inclusion_proof(r.seq)
        verify_inclusion(r.leaf_hash, r.seq, cp.size, p.hashes, cp.root_hash)
