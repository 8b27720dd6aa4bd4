"""Checkpoints on a timer, seals by age, files confidential at rest (issue 12, 3-4).

No timing assertions: each test waits (with a generous deadline) for what the log must
eventually do, and checks what it wrote.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from audit import AuditConfig, AuditLog
from audit.log import SignedCheckpoint
from signing.note import open_checkpoint
from siogw_api.errors import ConfigError
from tests.audit.conftest import ORIGIN, rec, soft_signer


def _until(cond: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_timed_checkpoints_reach_file_witness_and_callback(tmp_path: Path) -> None:
    seen: list[SignedCheckpoint] = []
    witness = tmp_path / "witness"
    lg = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN, checkpoint_interval=0.05,
                       witness_dir=witness, on_checkpoint=seen.append)
    try:
        keys = lg.trusted_keys()
        for i in range(5):
            lg.append_sync(rec(i))
        # no call to checkpoint(): the timer signs one covering all five
        _until(lambda: lg.latest_checkpoint is not None
               and lg.latest_checkpoint.checkpoint.size == 5, "a checkpoint of size 5")
        latest = lg.latest_checkpoint
        assert latest is not None and not latest.stopped
        assert (tmp_path / "log" / "checkpoint").read_bytes() == latest.note
        assert (witness / "checkpoint").read_bytes() == latest.note
        assert seen[-1] == latest
        cp, _ = open_checkpoint(latest.note, keys, origin=ORIGIN)
        assert cp.size == 5
        count = len(seen)
        time.sleep(0.3)  # idle: nothing new to sign
        assert len(seen) == count
    finally:
        lg.close()
    final = seen[-1]
    assert final.stopped and final.checkpoint.size == 5
    assert (witness / "checkpoint").read_bytes() == final.note
    # reopening supersedes the stopped checkpoint at once
    lg = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN, witness_dir=witness)
    try:
        reopened = lg.latest_checkpoint
        assert reopened is not None and not reopened.stopped
        assert (witness / "checkpoint").read_bytes() == reopened.note
    finally:
        lg.close()


def test_small_segment_is_sealed_by_age(tmp_path: Path) -> None:
    lg = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN, seal_max_age=0.1)
    try:
        lg.append_sync(rec(0))
        lg.append_sync(rec(1))
        _until(lambda: lg.health().sealed_segments == 1, "a seal by age")
        assert lg.health().sealed_size == 2
        assert (tmp_path / "log/archive/seg-00000001.seal").exists()
    finally:
        lg.close()


def test_clean_stop_seals_and_leaves_no_live_tail(tmp_path: Path) -> None:
    signer = soft_signer()
    lg = AuditLog.open(tmp_path / "log", signer, ORIGIN)
    lg.append_sync(rec(0))
    lg.close()
    assert list((tmp_path / "log/live").iterdir()) == []
    assert (tmp_path / "log/archive/seg-00000001.seal").exists()
    lg = AuditLog.open(tmp_path / "log", signer, ORIGIN)
    try:
        assert lg.append_sync(rec(1)).seq == 1
    finally:
        lg.close()
    assert (tmp_path / "log/archive/seg-00000002.seal").exists()


def test_bad_timings_and_witness_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        AuditConfig(checkpoint_interval=0)
    with pytest.raises(ConfigError):
        AuditConfig(seal_max_age=-1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="witness"):
        AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN, witness_dir=blocker / "w")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_modes_under_umask_0(tmp_path: Path, umask0: None) -> None:
    root, witness = tmp_path / "log", tmp_path / "witness"
    lg = AuditLog.open(root, soft_signer(), ORIGIN, AuditConfig(segment_max_records=3),
                       witness_dir=witness)
    try:
        for i in range(5):
            lg.append_sync(rec(i))
        lg.seal_now()
        lg.append_sync(rec(5))
        lg.checkpoint()
        for d in (root, root / "archive", root / "live", root / "tree"):
            assert _mode(d) == 0o700, d
        for p in root.rglob("*"):
            if p.is_dir():
                assert _mode(p) == 0o700, p
            elif p.parent.name == "archive" and p.name != "keys.json":
                assert _mode(p) == 0o400, p
            else:
                assert _mode(p) == 0o600, p
        assert _mode(witness / "checkpoint") == 0o600
        assert sorted(p.name for p in (root / "live").iterdir()) == ["seg-00000003.log"]
    finally:
        lg.close()
    assert all(_mode(p) == 0o400 for p in (root / "archive").glob("seg-*"))


def _flags(p: Path) -> int:
    fd = os.open(p, os.O_RDONLY)
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, 0x80086601, struct.pack("i", 0)))[0])
    finally:
        os.close(fd)


def _clear_immutable(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40086602, struct.pack("i", _flags(p) & ~0x10))
    finally:
        os.close(fd)


def test_immutable_seals_where_capable(tmp_path: Path) -> None:
    lg = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN,
                       AuditConfig(immutable_seals=True))
    lg.append_sync(rec(0))
    lg.close()
    sealed = sorted((tmp_path / "log/archive").glob("seg-*"))
    assert len(sealed) == 2
    try:
        flags = [_flags(p) & 0x10 for p in sealed]
        capable = _probe_immutable(tmp_path / "probe")
        assert flags == ([0x10, 0x10] if capable else [0, 0])
        if capable:
            with pytest.raises(PermissionError):
                sealed[0].unlink()
    finally:
        for p in sealed:
            try:
                _clear_immutable(p)
            except OSError:
                pass


def _probe_immutable(p: Path) -> bool:
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40086602, struct.pack("i", _flags(p) | 0x10))
    except OSError:
        return False
    finally:
        os.close(fd)
    _clear_immutable(p)
    return True
