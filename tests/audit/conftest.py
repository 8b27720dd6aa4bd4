"""Fixtures for the audit tests: software signers and a log factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
    """A log with 4 sealed segments of 5 records and a live tail of 3; (dir, keys, receipts)."""
    log_dir = tmp_path / "log"
    lg = AuditLog.open(log_dir, signer, ORIGIN, AuditConfig(segment_max_records=5))
    try:
        receipts = [lg.append_sync(rec(i)) for i in range(23)]
    finally:
        lg.close()
    keys = tmp_path / "trusted-keys.json"
    keys.write_bytes((log_dir / "archive" / "keys.json").read_bytes())
    return log_dir, keys, receipts
