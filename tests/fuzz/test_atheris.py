"""Runs the atheris target (``atheris_target.py``) for a bounded time: it must find nothing.

A subprocess, so that libFuzzer's instrumentation and exit do not touch the test
process. The seed corpus (``corpus/<kind>/``) is copied into a temporary directory with
each file prefixed by its parser's selector byte. ``SIOGW_ATHERIS_SECONDS`` sets the time
(20 s by default). Skipped when atheris is not installed (a test extra, Linux only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TARGET = HERE / "atheris_target.py"
KINDS = ["dsse", "query", "admin", "record", "segment", "cert", "crl", "note"]


@pytest.mark.slow
def test_atheris_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for selector, kind in enumerate(KINDS):
        for sample in sorted((HERE / "corpus" / kind).iterdir()):
            (corpus / f"{kind}-{sample.name}").write_bytes(bytes([selector])
                                                          + sample.read_bytes())
    seconds = int(os.environ.get("SIOGW_ATHERIS_SECONDS", "20"))
    root = HERE.parent.parent
    proc = subprocess.run(
        [sys.executable, str(TARGET), f"-max_total_time={seconds}", "-max_len=65536",
         "-rss_limit_mb=2048", "-timeout=10", f"-artifact_prefix={tmp_path}/",
         str(corpus)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=seconds + 120, check=False,
    )
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(
        ("crash-", "oom-", "timeout-", "leak-")))
    found = {name: (tmp_path / name).read_bytes()[:512].hex() for name in crashes}
    assert proc.returncode == 0 and not crashes, (found, proc.stderr[-4000:])
