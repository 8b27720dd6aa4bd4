"""After a clean stop, any change to any evidence file fails ``siogw audit verify``.

Issue 12, point 3: the tail that used to stay unsealed (and could be cut, extended,
rewritten with fixed CRCs or deleted while verify said OK) is sealed at the stop and
covered by a checkpoint marked ``stopped`` -- in the log directory and in a witness
directory outside it. Each case runs the CLI as an operator would (``--keys`` and
``--witness``) and checks the one error line names the file, the seq and the reason.
A crash may leave records past the newest checkpoint: reported as a crash tail.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from audit import AuditConfig, AuditLog
from audit.archive import load_trusted_keys, verify_archive
from audit.record import decode_record, encode_record
from audit.segments import MAGIC, encode_frame, scan_frames
from signing.errors import VerificationError
from siogw_api.timeutil import now_utc
from tests.audit.conftest import ORIGIN, rec, soft_signer

SEG5 = "archive/seg-00000005.log.gz"
SEAL5 = "archive/seg-00000005.seal"


@pytest.fixture
def stopped(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A cleanly stopped log with a witness: (log dir, trusted keys, witness dir)."""
    log_dir, witness = tmp_path / "log", tmp_path / "witness"
    lg = AuditLog.open(log_dir, soft_signer(), ORIGIN, AuditConfig(segment_max_records=5),
                       witness_dir=witness)
    for i in range(21):
        lg.append_sync(rec(i))
    lg.checkpoint()
    shutil.copy(log_dir / "checkpoint", tmp_path / "old-own-checkpoint")  # size 21
    for i in range(21, 23):
        lg.append_sync(rec(i))
    lg.close()
    keys = tmp_path / "trusted-keys.json"
    keys.write_bytes((log_dir / "archive" / "keys.json").read_bytes())
    return log_dir, keys, witness


def verify_cli(log_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "siogw", "audit", "verify", str(log_dir),
                           "--quiet", *extra], capture_output=True, text=True, timeout=120)


def _unlink(p: Path) -> None:
    os.chmod(p, 0o600)
    p.unlink()


def _seg5_bodies(d: Path) -> list[bytes]:
    return scan_frames(gzip.decompress((d / SEG5).read_bytes())).bodies


def _roll_back_own_checkpoint(d: Path) -> None:
    """Replace the log's own checkpoint with an older genuine one (size 21)."""
    shutil.copy(d.parent / "old-own-checkpoint", d / "checkpoint")


def _unseal_seg5(d: Path, bodies: list[bytes]) -> None:
    """Put (changed) records of segment 5 back as a live tail, as if never sealed."""
    _unlink(d / SEG5)
    _unlink(d / SEAL5)
    (d / "live/seg-00000005.log").write_bytes(MAGIC + b"".join(encode_frame(b)
                                                               for b in bodies))


def cut_last_byte_sealed(d: Path) -> None:
    p = d / SEG5
    os.chmod(p, 0o600)
    p.write_bytes(p.read_bytes()[:-1])


def cut_last_record_as_live(d: Path) -> None:
    _unseal_seg5(d, _seg5_bodies(d)[:-1])
    _roll_back_own_checkpoint(d)


def cut_torn_as_live(d: Path) -> None:
    bodies = _seg5_bodies(d)
    _unseal_seg5(d, bodies)
    p = d / "live/seg-00000005.log"
    p.write_bytes(p.read_bytes()[:-1])  # "torn, unacknowledged" used to pass


def append_forged_record(d: Path) -> None:
    body = encode_record(rec(99), 23, now_utc())
    (d / "live/seg-00000006.log").write_bytes(MAGIC + encode_frame(body))


def append_bytes_to_sealed(d: Path) -> None:
    p = d / SEG5
    os.chmod(p, 0o600)
    p.write_bytes(p.read_bytes() + b"\x00")


def rewrite_actor_fixed_crc(d: Path) -> None:
    bodies = [b.replace(b'"actor":"user6"', b'"actor":"user0"') for b in _seg5_bodies(d)]
    assert bodies != _seg5_bodies(d)
    _unseal_seg5(d, bodies)
    _roll_back_own_checkpoint(d)


def rewrite_actor_keep_own_checkpoint(d: Path) -> None:
    bodies = [b.replace(b'"actor":"user6"', b'"actor":"user0"') for b in _seg5_bodies(d)]
    _unseal_seg5(d, bodies)


def delete_tail_segment(d: Path) -> None:
    _unlink(d / SEG5)
    _unlink(d / SEAL5)
    _roll_back_own_checkpoint(d)


def delete_own_checkpoint(d: Path) -> None:
    _unlink(d / "checkpoint")


def flip_own_checkpoint(d: Path) -> None:
    p = d / "checkpoint"
    data = bytearray(p.read_bytes())
    data[len(ORIGIN) + 2] ^= 0x01  # the tree size line
    p.write_bytes(bytes(data))


def delete_key_history(d: Path) -> None:
    _unlink(d / "archive/keys.json")


def change_key_history(d: Path) -> None:
    p = d / "archive/keys.json"
    doc = json.loads(p.read_text())
    doc["keys"][0]["valid_from_size"] = 1
    p.write_text(json.dumps(doc))


def cut_key_history(d: Path) -> None:
    p = d / "archive/keys.json"
    doc = json.loads(p.read_text())
    doc["keys"] = []
    p.write_text(json.dumps(doc))


# (name, tamper, file the error names, seq, reason)
CASES: list[tuple[str, Callable[[Path], None], str, int | None, str]] = [
    ("cut last byte of the tail segment", cut_last_byte_sealed, SEG5, 23,
     "compressed segment is corrupt"),
    ("cut last record, unsealed, own checkpoint rolled back", cut_last_record_as_live,
     "live/seg-00000005.log", 22, "signed records are missing"),
    ("cut mid-frame (torn) after unsealing", cut_torn_as_live, "live/seg-00000005.log", 22,
     "signed records are missing"),
    ("append a forged record", append_forged_record, "live/seg-00000006.log", 23,
     "after the clean stop"),
    ("append bytes to the tail segment", append_bytes_to_sealed, SEG5, 23,
     "1 bytes after the compressed data"),
    ("rewrite actor, fixed CRCs, unsealed, own checkpoint rolled back", rewrite_actor_fixed_crc,
     "live/seg-00000005.log", 20, "differs from the checkpoint"),
    ("rewrite actor, fixed CRCs, unsealed", rewrite_actor_keep_own_checkpoint,
     "live/seg-00000005.log", 22, "differs from the checkpoint"),
    ("delete the tail segment, roll back the own checkpoint", delete_tail_segment,
     "archive/seg-00000004.log.gz", 20, "signed records are missing"),
    ("delete the own checkpoint", delete_own_checkpoint, "log/checkpoint", None,
     "checkpoint file is missing"),
    ("flip a byte of the own checkpoint", flip_own_checkpoint, "log/checkpoint", None,
     "signature"),
    ("delete keys.json", delete_key_history, "archive/keys.json", None,
     "key history is missing"),
    ("change keys.json", change_key_history, "archive/keys.json", None, "was changed"),
    ("cut keys.json", cut_key_history, "archive/keys.json", None, "missing from its key"),
]


@pytest.mark.parametrize(("tamper", "where", "seq", "what"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_change_after_clean_stop_fails_verify(stopped, tamper, where, seq, what) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, witness = stopped
    ok = verify_cli(log_dir, "--keys", str(keys), "--witness", str(witness))
    assert ok.returncode == 0, ok.stderr
    assert "0 unsealed, 0 past the latest checkpoint" in ok.stdout
    assert "(clean stop)" in ok.stdout
    tamper(log_dir)
    out = verify_cli(log_dir, "--keys", str(keys), "--witness", str(witness))
    assert out.returncode == 5, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert where in lines[0] and what in lines[0], lines[0]
    if seq is not None:
        assert f"seq {seq}:" in lines[0], lines[0]


def test_keys_must_come_from_outside(stopped, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, witness = stopped
    out = verify_cli(log_dir)
    assert out.returncode != 0 and "--trust-archive-keys" in out.stderr
    out = verify_cli(log_dir, "--trust-archive-keys")
    assert out.returncode == 0, out.stderr
    assert "--trust-archive-keys, NOT checked" in out.stdout
    # A wholly rewritten archive under a new key passes only if its own keys are trusted.
    forged = tmp_path / "forged"
    lg = AuditLog.open(forged, soft_signer(), ORIGIN, AuditConfig(segment_max_records=5))
    for i in range(23):
        lg.append_sync(rec(i + 1000))
    lg.close()
    assert verify_cli(forged, "--trust-archive-keys").returncode == 0
    out = verify_cli(forged, "--keys", str(keys))
    assert out.returncode == 5 and "no signature from a trusted key" in out.stderr
    # The real witness does not match the forged archive either.
    out = verify_cli(forged, "--trust-archive-keys", "--witness", str(witness))
    assert out.returncode == 5 and "witness/checkpoint" in out.stderr


def test_successive_checkpoints_must_be_consistent(tmp_path: Path) -> None:
    signer = soft_signer()
    witness = tmp_path / "witness"
    lg = AuditLog.open(tmp_path / "log", signer, ORIGIN, AuditConfig(segment_max_records=4),
                       witness_dir=witness)
    for i in range(10):
        lg.append_sync(rec(i))
    (tmp_path / "older").write_bytes(lg.checkpoint().note)
    for i in range(10, 15):
        lg.append_sync(rec(i))
    keys = lg.trusted_keys()
    lg.close()
    (tmp_path / "keys.json").write_bytes((tmp_path / "log/archive/keys.json").read_bytes())
    # Another tree of the same size signed by the same key (a fork).
    other = AuditLog.open(tmp_path / "fork", signer, ORIGIN)
    for i in range(10):
        other.append_sync(rec(i + 500))
    (tmp_path / "forked").write_bytes(other.checkpoint().note)
    other.close()
    args = ("--keys", str(tmp_path / "keys.json"), "--witness", str(witness))
    out = verify_cli(tmp_path / "log", *args, "--checkpoint", str(tmp_path / "older"))
    assert out.returncode == 0 and "tree size 15 (clean stop)" in out.stdout, out.stderr
    out = verify_cli(tmp_path / "log", *args, "--checkpoint", str(tmp_path / "forked"))
    assert out.returncode == 5, out.stdout
    assert "seq 9: root at tree size 10 differs from the checkpoint" in out.stderr
    assert verify_archive(tmp_path / "log", keys).tree_size == 15


def test_crash_tail_is_reported_not_hidden(crashed) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys = crashed
    trusted = load_trusted_keys([keys])
    report = verify_archive(log_dir, trusted, origin=ORIGIN, archive_keys_trusted=False)
    assert report.tree_size == 23 and report.unsigned_records == 0
    live = log_dir / "live/seg-00000005.log"
    saved = live.read_bytes()
    # records past the newest checkpoint (not a clean stop): a crash tail, reported
    live.write_bytes(saved + encode_frame(encode_record(rec(50), 23, now_utc())))
    out = verify_cli(log_dir, "--keys", str(keys))
    assert out.returncode == 0, out.stderr
    assert "1 past the latest checkpoint" in out.stdout
    assert "seq 23..23: 1 records past the latest checkpoint" in out.stderr
    # a torn frame past it: reported as a torn tail
    live.write_bytes(saved + b"\x00\x00\x01\x00torn")
    out = verify_cli(log_dir, "--keys", str(keys))
    assert out.returncode == 0 and "torn tail" in out.stderr, out.stderr
    # an acknowledged, checkpointed record cut off: never passed off as torn
    live.write_bytes(saved[:-1])
    out = verify_cli(log_dir, "--keys", str(keys))
    assert out.returncode == 5
    assert "live/seg-00000005.log: seq 22: records end at tree size 22" in out.stderr
    # a flipped byte in the live tail
    data = bytearray(saved)
    data[len(MAGIC) + 8 + 30] ^= 0x01  # inside seq 20
    live.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as info:
        verify_archive(log_dir, trusted)
    assert info.value.seq == 20 and "CRC mismatch" in info.value.what
    assert info.value.where is not None and info.value.where.endswith("seg-00000005.log")
    live.write_bytes(saved)
    records = [decode_record(b) for b in scan_frames(live.read_bytes()).bodies]
    assert [r.seq for r in records] == [20, 21, 22]
