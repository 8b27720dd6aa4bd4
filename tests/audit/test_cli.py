"""``siogw audit verify|prove|reindex`` as the operator runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from audit import AuditConfig, AuditLog
from audit.archive import iter_archive_records
from signing import SoftwareSigner
from tests.audit.conftest import ORIGIN, rec


def siogw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "siogw", *args], capture_output=True,
                          text=True, timeout=120)


def test_verify_ok_with_keys_and_pem(populated, tmp_path: Path, signer: SoftwareSigner) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, _ = populated
    out = siogw("audit", "verify", str(log_dir), "--keys", str(keys))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK: 5 sealed segments, 23 records (0 unsealed")
    pem = tmp_path / "audit.pub.pem"
    pem.write_bytes(signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    out = siogw("audit", "verify", str(log_dir / "archive"), "--keys", str(pem))
    assert out.returncode == 0, out.stderr
    assert "OK: 5 sealed segments, 23 records" in out.stdout
    out = siogw("audit", "verify", str(log_dir), "--keys", str(keys), "--jobs", "2", "--strict")
    assert out.returncode == 0 and "23 records" in out.stdout, out.stderr
    script = Path(sys.executable).with_name("siogw")
    if script.exists():  # the console script, with worker processes (spawn)
        out = subprocess.run([str(script), "audit", "verify", str(log_dir), "--keys",
                              str(keys), "--jobs", "2"], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0 and "23 records" in out.stdout, out.stderr
    out = siogw("audit", "verify", str(log_dir))  # no keys kept elsewhere: refused
    assert out.returncode != 0 and "--trust-archive-keys" in out.stderr
    out = siogw("audit", "verify", str(log_dir), "--trust-archive-keys")
    assert out.returncode == 0 and "trusting the archive's own key history" in out.stderr
    assert "--trust-archive-keys, NOT checked" in out.stdout


def test_verify_with_anchor_detects_missing_tail(populated, tmp_path: Path,
                                                 signer: SoftwareSigner) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, _ = populated
    lg = AuditLog.open(log_dir, signer, ORIGIN, AuditConfig(segment_max_records=5))
    anchor = tmp_path / "anchor.note"
    anchor.write_bytes(lg.checkpoint().note)
    lg.close()
    assert siogw("audit", "verify", str(log_dir), "--keys", str(keys),
                 "--checkpoint", str(anchor)).returncode == 0
    for name in ("archive/seg-00000005.log.gz", "archive/seg-00000005.seal", "checkpoint"):
        (log_dir / name).chmod(0o600)
        (log_dir / name).unlink()  # the newest segment and the log's checkpoint vanish
    out = siogw("audit", "verify", str(log_dir / "archive"), "--keys", str(keys),
                "--checkpoint", str(anchor))
    assert out.returncode == 5
    assert "seq 20: records end at tree size 20" in out.stderr
    assert "signed records are missing" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_prove_bundle_and_separate_files(populated, tmp_path: Path,
                                         signer: SoftwareSigner) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, receipts = populated
    lg = AuditLog.open(log_dir, signer, ORIGIN, AuditConfig(segment_max_records=5))
    try:
        old_note = lg.checkpoint().note
        old_size = lg.tree_size
        new_receipt = lg.append_sync(rec(100))
        bundle = lg.proof_bundle(receipts[7])
        cons = lg.consistency_proof(old_size, bundle_size := lg.tree_size).to_json()
        assert bundle_size == old_size + 1
    finally:
        lg.close()
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    out = siogw("audit", "prove", "--bundle", str(tmp_path / "bundle.json"), "--keys", str(keys))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK: seq 7 is in test.siogw/audit")

    (tmp_path / "cp.note").write_text(bundle["checkpoint"])
    (tmp_path / "receipt.json").write_text(json.dumps(bundle["receipt"]))
    (tmp_path / "proof.json").write_text(json.dumps(bundle["proof"]))
    (tmp_path / "old.note").write_bytes(old_note)
    (tmp_path / "cons.json").write_text(json.dumps(cons))
    record7 = next(b for b, r in iter_archive_records(log_dir) if r.seq == 7)
    (tmp_path / "record").write_bytes(record7)
    files = ["--checkpoint", str(tmp_path / "cp.note"), "--receipt",
             str(tmp_path / "receipt.json"), "--proof", str(tmp_path / "proof.json"),
             "--keys", str(keys)]
    out = siogw("audit", "prove", *files, "--record", str(tmp_path / "record"),
                "--old-checkpoint", str(tmp_path / "old.note"),
                "--consistency", str(tmp_path / "cons.json"))
    assert out.returncode == 0, out.stderr
    assert "is consistent with tree size" in out.stdout

    # Mutations: another record, a flipped proof hash, a tampered checkpoint.
    (tmp_path / "record").write_bytes(record7.replace(b'"n":7', b'"n":8'))
    out = siogw("audit", "prove", *files, "--record", str(tmp_path / "record"))
    assert out.returncode == 5 and "record does not match receipt" in out.stderr
    bad = dict(bundle["proof"])
    h = bad["hashes"][0]
    bad["hashes"] = [("0" if h[0] != "0" else "1") + h[1:], *bad["hashes"][1:]]
    (tmp_path / "proof.json").write_text(json.dumps(bad))
    out = siogw("audit", "prove", *files)
    assert out.returncode == 5 and "proof: seq 7: inclusion proof root mismatch" in out.stderr
    (tmp_path / "proof.json").write_text(json.dumps(bundle["proof"]))
    (tmp_path / "cp.note").write_text(bundle["checkpoint"].replace("\n24\n", "\n25\n"))
    out = siogw("audit", "prove", *files)
    assert out.returncode == 5 and "checkpoint: bad signature" in out.stderr
    assert new_receipt.seq == 23


def test_reindex_sqlite(populated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_dir, keys, _ = populated
    url = f"sqlite:///{tmp_path / 'index.db'}"
    out = siogw("audit", "reindex", "--db", url, str(log_dir), "--keys", str(keys))
    assert out.returncode == 0, out.stderr
    assert "indexed 23 records" in out.stdout
