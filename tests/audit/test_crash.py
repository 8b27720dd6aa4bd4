"""kill -9 at random points: every acknowledged record survives; the archive verifies."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from audit import AuditLog, verify_archive
from audit.keys import read_history
from signing import Algorithm, SoftwareSigner, generate_software_key

WRITER = Path(__file__).with_name("crash_writer.py")
ORIGIN = "crash.siogw/audit"


def _run_kills(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    key = generate_software_key(Algorithm.ECDSA_P256_SHA256)
    pem = tmp_path / "audit-key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    log_dir = tmp_path / "log"
    acked: dict[int, str] = {}

    def take(line: str) -> None:
        seq_text, leaf = line.split()
        seq = int(seq_text)
        assert acked.setdefault(seq, leaf) == leaf, f"seq {seq} acknowledged twice"

    for k in range(kills):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(log_dir), str(pem)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        # One kill in five lands during start-up/recovery; the rest while appending,
        # timed from the writer's "ready" so a slow, loaded machine still gets there.
        during_startup = rng.random() < 0.2
        delay = rng.uniform(0.0, 0.3 if during_startup else 0.5)
        deadline = time.monotonic() + (delay if during_startup else 60.0)
        buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.01)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                if not during_startup and b"ready\n" not in buf and b"ready\n" in buf + chunk:
                    deadline = time.monotonic() + delay
                buf += chunk
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate()
        buf += rest
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        text = buf.decode()
        complete = text[: text.rfind("\n") + 1]  # a line cut by the kill was never seen
        for line in complete.splitlines():
            if line != "ready":
                take(line)
        if k % 10 == 9:
            keys = read_history(log_dir / "archive" / "keys.json")
            verify_archive(log_dir, keys, origin=ORIGIN)  # even before recovery
    assert len(acked) > kills  # the writer did make progress between kills

    signer = SoftwareSigner.from_pem_file(pem)
    lg = AuditLog.open(log_dir, signer, ORIGIN)
    try:
        assert lg.tree_size > max(acked)
        for seq, leaf in acked.items():
            assert lg.leaf_hash(seq).hex() == leaf, f"acknowledged seq {seq} lost or changed"
        keys = lg.trusted_keys()
    finally:
        lg.close()
    report = verify_archive(log_dir, keys, origin=ORIGIN)
    assert report.tree_size >= len(acked) and report.sealed_segments > 0


def test_kill9_short(tmp_path: Path) -> None:
    _run_kills(tmp_path, kills=10, seed=1)


@pytest.mark.slow
def test_kill9_many(tmp_path: Path) -> None:
    _run_kills(tmp_path, kills=120, seed=int(time.time()))
