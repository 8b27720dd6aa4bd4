"""Smoke test of `python -m siogw.demo` (slow: builds a whole world and runs the story)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    env["SIOGW_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "siogw.demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "demo OK" in out and "skipped" not in out and "FAILED" not in out
    for line in (
        "MFA login",
        "consent",
        "Signed query: resource 1 ",
        "[TRUNCATED]",
        "no amounts",
        "Signed query: resource 50",
        "Signed query: resource 51",
        "refused: UNAUTHENTICATED",
        "revoked at",
        "`siogw verify`",
        "verified",
        "checkpoint: tree size",
        "audit verify",
        "before: siogw verify analyst-query.dsse.json",
        "after: exit 4: siogw: error: revoked",
        # issue 12: the audit key of its own, a checkpoint covering a receipt, a seal
        "audit key (ed25519) generated",
        "signed by the audit key",
        "verified by the client library",
        "siogw audit prove --bundle receipt-bundle.json --keys certs/audit-key.pem: OK",
        "sealed and archived",
        # issue 16: an FM-1 message receipted and verified offline; a late one flagged
        "(suspicious_before) of provider",
        "verified offline by the client library",
        "flagged late by",
    ):
        assert line in out, f"missing {line!r} in transcript:\n{out}"
    # the final verify, with the audit key given explicitly, covers every record: sealed
    # segments and the live one (which a clean stop may have sealed too)
    verified = re.search(r"OK: (\d+) sealed segments, (\d+) records \((\d+) unsealed[^)]*\), "
                         r"tree size (\d+)", out)
    assert verified is not None, out
    sealed, records, live, size = map(int, verified.groups())
    assert sealed >= 1 and records == size > live
    assert "latest checkpoint tree size" in out and "no checkpoint kept outside" not in out
    assert "trusting the archive" not in out.lower()
    assert (home / "audit").is_dir()
    assert not list(tmp_path.glob("*.json"))  # nothing exported into the cwd


def test_demo_refuses_to_wipe_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep")
    proc = subprocess.run(
        [sys.executable, "-m", "siogw.demo", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to wipe" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep"
