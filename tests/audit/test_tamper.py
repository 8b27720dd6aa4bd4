"""Tamper matrix: each change to the archive is caught at the exact place it was made.

The populated log was stopped cleanly: sealed segments 1-5 (seq 0-19, five each, then
20-22), no live tail, its own ``checkpoint`` marked stopped at size 23. Segment 2 holds
seq 5-9. The crashed log (``crashed`` fixture) has seals 1-4 and a live tail seq 20-22
covered by its last checkpoint.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.archive import load_trusted_keys, verify_archive
from audit.segments import MAGIC, encode_frame, scan_frames
from signing.errors import VerificationError
from signing.note import open_note, sign_note
from tests.audit.conftest import soft_signer

SEG2 = "archive/seg-00000002.log.gz"
SEAL2 = "archive/seg-00000002.seal"


def _writable(p: Path) -> None:
    os.chmod(p, 0o644)


def _frames(log_dir: Path, name: str = SEG2) -> list[bytes]:
    return scan_frames(gzip.decompress((log_dir / name).read_bytes())).bodies


def _rewrite(
    log_dir: Path, bodies: list[bytes], name: str = SEG2, raw: bytes | None = None
) -> None:
    p = log_dir / name
    _writable(p)
    data = raw if raw is not None else MAGIC + b"".join(encode_frame(b) for b in bodies)
    p.write_bytes(gzip.compress(data, mtime=0))


def flip_gz_byte(d: Path) -> None:
    p = d / SEG2
    _writable(p)
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0x10
    p.write_bytes(bytes(b))


def flip_record_byte(d: Path) -> None:
    bodies = _frames(d)
    data = bytearray(MAGIC + b"".join(encode_frame(b) for b in bodies))
    offset = len(MAGIC) + sum(8 + len(b) for b in bodies[:2]) + 8 + 20  # inside seq 7
    data[offset] ^= 0x01
    _rewrite(d, [], raw=bytes(data))


def edit_record_fix_crc(d: Path) -> None:
    bodies = _frames(d)
    bodies[2] = bodies[2].replace(b'"actor":"user0"', b'"actor":"user9"')
    _rewrite(d, bodies)


def delete_record(d: Path) -> None:
    bodies = _frames(d)
    del bodies[2]
    _rewrite(d, bodies)


def insert_record(d: Path) -> None:
    bodies = _frames(d)
    bodies.insert(2, bodies[1])
    _rewrite(d, bodies)


def reorder_records(d: Path) -> None:
    bodies = _frames(d)
    bodies[2], bodies[3] = bodies[3], bodies[2]
    _rewrite(d, bodies)


def truncate_segment(d: Path) -> None:
    _rewrite(d, _frames(d)[:-1])


def truncate_mid_frame(d: Path) -> None:
    bodies = _frames(d)
    data = MAGIC + b"".join(encode_frame(b) for b in bodies)
    _rewrite(d, [], raw=data[:-10])


def remove_segment(d: Path) -> None:
    for name in (SEG2, SEAL2):
        _writable(d / name)
        (d / name).unlink()


def remove_segment_file_only(d: Path) -> None:
    _writable(d / SEG2)
    (d / SEG2).unlink()


def remove_last_sealed_segment(d: Path) -> None:
    for name in ("archive/seg-00000005.log.gz", "archive/seg-00000005.seal"):
        _writable(d / name)
        (d / name).unlink()


def swap_seals(d: Path) -> None:
    a, b = d / SEAL2, d / "archive/seg-00000003.seal"
    _writable(a)
    _writable(b)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def resign_seal_other_key(d: Path) -> None:
    p = d / SEAL2
    keys = load_trusted_keys([d / "archive/keys.json"])
    body, _ = open_note(p.read_bytes(), keys)
    other = soft_signer()
    from signing.note import note_key_hash

    name = body.split(b"\n", 1)[0].decode()
    _writable(p)
    p.write_bytes(sign_note(body, name, other.sign,
                            note_key_hash(name, other.public_key, other.algorithm)))


def edit_seal_body(d: Path) -> None:
    p = d / SEAL2
    _writable(p)
    p.write_bytes(p.read_bytes().replace(b"seq 5 9", b"seq 5 8"))


def time_backwards(d: Path) -> None:
    bodies = _frames(d)
    import re

    bodies[2] = re.sub(rb'"time":"\d{4}', b'"time":"2001', bodies[2])
    _rewrite(d, bodies)


CASES: list[tuple[str, Callable[[Path], None], str, int | None, str]] = [
    ("flipped byte (compressed)", flip_gz_byte, SEG2, None, "compressed segment is corrupt"),
    ("flipped byte (record)", flip_record_byte, SEG2, 7, "CRC mismatch"),
    ("edited record, CRC fixed", edit_record_fix_crc, SEG2, 5,
     "segment digest does not match its seal"),
    ("deleted record", delete_record, SEG2, 7, "found seq 8, expected 7"),
    ("inserted record", insert_record, SEG2, 7, "found seq 6, expected 7"),
    ("reordered records", reorder_records, SEG2, 7, "found seq 8, expected 7"),
    ("truncated segment", truncate_segment, SEG2, 9, "segment ends at seq 8 but its seal says 9"),
    ("truncated mid-frame", truncate_mid_frame, SEG2, 9, "torn frame"),
    ("removed segment", remove_segment, SEG2, 5, "seg-00000002.log is missing"),
    ("removed segment file", remove_segment_file_only, SEG2, 5, "sealed segment file is missing"),
    ("removed last segment", remove_last_sealed_segment, "archive/seg-00000004.log.gz", 20,
     "signed records are missing"),
    ("swapped seals", swap_seals, SEAL2, None, "seal is for segment 3, not 2"),
    ("seal re-signed with another key", resign_seal_other_key, SEAL2, None,
     "no signature from a trusted key"),
    ("seal body edited", edit_seal_body, SEAL2, None, "bad signature"),
    ("time goes backwards", time_backwards, SEG2, 7, "record time goes backwards"),
]


@pytest.mark.parametrize(("tamper", "where", "seq", "what"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tamper_detected_at_exact_place(populated, tamper, where, seq, what) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys_file, _ = populated
    keys = load_trusted_keys([keys_file])
    verify_archive(log_dir, keys)  # clean before
    tamper(log_dir)
    with pytest.raises(VerificationError) as info:
        verify_archive(log_dir, keys)
    err = info.value
    assert err.where is not None and err.where.endswith(where), err.place()
    assert err.seq == seq or seq is None, err.place()
    assert what in err.what, err.place()


@pytest.mark.parametrize("case", [1, 3, 6, 11, 12], ids=lambda i: CASES[i][0])
def test_tamper_detected_by_cli(populated, tmp_path: Path, case: int) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys_file, _ = populated
    copy = tmp_path / "copy"
    shutil.copytree(log_dir, copy)
    _name, tamper, where, seq, what = CASES[case]
    tamper(copy)
    out = subprocess.run([sys.executable, "-m", "siogw", "audit", "verify", str(copy),
                          "--keys", str(keys_file), "--quiet"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 5, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("siogw: error: ") and where in lines[0] and what in lines[0]
    if seq is not None:
        assert f"seq {seq}:" in lines[0]


@pytest.mark.parametrize("case", [1, 3, 12], ids=lambda i: CASES[i][0])
def test_parallel_verification_names_the_same_place(populated, tmp_path: Path, case: int) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys_file, _ = populated
    keys = load_trusted_keys([keys_file])
    clean = verify_archive(log_dir, keys, workers=2)
    assert clean.tree_size == 23 and clean.root_hash == verify_archive(log_dir, keys).root_hash
    CASES[case][1](log_dir)
    with pytest.raises(VerificationError) as seq_info:
        verify_archive(log_dir, keys, workers=1)
    with pytest.raises(VerificationError) as par_info:
        verify_archive(log_dir, keys, workers=2)
    assert par_info.value.place() == seq_info.value.place()
