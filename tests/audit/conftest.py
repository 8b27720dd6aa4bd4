"""Fixtures for the audit tests: software signers and a log factory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from audit import AuditConfig, AuditLog, AuditRecord
from signing import Algorithm, SoftwareSigner, generate_software_key

ORIGIN = "test.siogw/audit"


def soft_signer() -> SoftwareSigner:
    return SoftwareSigner(generate_software_key(Algorithm.ECDSA_P256_SHA256))


def rec(i: int = 0, **details: object) -> AuditRecord:
    return AuditRecord(
        actor=f"user{i % 7}",
        event="query",
        outcome="success",
        cert_fingerprint="ab" * 32,
        details={"n": i, "resource": 1 + i % 52, "basis": "financial monitoring",
                 "task": f"T-{i}", "request_id": f"r{i}", **details},
        payload=b"envelope-%d" % i,
    )


@pytest.fixture
def signer() -> SoftwareSigner:
    return soft_signer()


@pytest.fixture
def open_log(tmp_path: Path, signer: SoftwareSigner) -> Iterator[Callable[..., AuditLog]]:
    opened: list[AuditLog] = []

    def make(directory: Path | None = None, sig: object = None, **cfg: object) -> AuditLog:
        lg = AuditLog.open(directory or tmp_path / "log", sig or signer, ORIGIN,
                           AuditConfig(**cfg))  # type: ignore[arg-type]
        opened.append(lg)
        return lg

    yield make
    for lg in opened:
        lg.close()


@pytest.fixture
def populated(tmp_path: Path, signer: SoftwareSigner) -> tuple[Path, Path, list]:
    """A log closed cleanly: 5 sealed segments (seq 0-19 by fives, then 20-22), no live
    tail, its ``checkpoint`` marked stopped at 23; (dir, trusted keys, receipts)."""
    log_dir = tmp_path / "log"
    lg = AuditLog.open(log_dir, signer, ORIGIN, AuditConfig(segment_max_records=5))
    try:
        receipts = [lg.append_sync(rec(i)) for i in range(23)]
    finally:
        lg.close()
    keys = tmp_path / "trusted-keys.json"
    keys.write_bytes((log_dir / "archive" / "keys.json").read_bytes())
    return log_dir, keys, receipts


CRASHING_WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[3])
from audit import AuditConfig, AuditLog
from signing import SoftwareSigner
from tests.audit.conftest import ORIGIN, rec
lg = AuditLog.open(sys.argv[1], SoftwareSigner.from_pem_file(sys.argv[2]), ORIGIN,
                   AuditConfig(segment_max_records=5, checkpoint_interval=3600))
for i in range(23):
    lg.append_sync(rec(i))
while lg.health().pending_seals:
    time.sleep(0.01)
lg.checkpoint()  # the newest checkpoint covers all 23 (as within one interval)
os._exit(0)  # no close(): what kill -9 leaves
"""


def crash_log(tmp_path: Path) -> tuple[Path, Path]:
    """A log left by a crash: seals 1-4 (seq 0-19), a live tail seq 20-22 covered by
    its last checkpoint (size 23); (dir, trusted keys)."""
    key = generate_software_key(Algorithm.ECDSA_P256_SHA256)
    pem = tmp_path / "audit-key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    log_dir = tmp_path / "log"
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(log_dir), str(pem),
                    str(Path(__file__).resolve().parents[2])], check=True, timeout=120)
    keys = tmp_path / "trusted-keys.json"
    keys.write_bytes((log_dir / "archive" / "keys.json").read_bytes())
    return log_dir, keys


@pytest.fixture
def crashed(tmp_path: Path) -> tuple[Path, Path]:
    return crash_log(tmp_path)
