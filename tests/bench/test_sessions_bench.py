"""``bench/sessions.py`` runs end to end (issue 18, point 4): the sessions are written and
each makes one authenticated call that the gateway answers, and the bench prints the
gateway's RSS before and after, the per-session cost and the verdict against 300 MiB,
saying that the sessions were not made by real logins. No figure is asserted beyond
"present and positive": memory is the bench's to print, not a test's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sessions_bench_runs_and_prints_rss_before_and_after(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("SIOGW_DATABASE_URL", None)
    env.pop("SOFTHSM2_CONF", None)  # the bench makes its own token store
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sessions.py"), "--sessions", "150",
         "--concurrency", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "1 process(es)" in out
    assert "NOT 150 real logins" in out
    assert "150 of 150 answered" in out
    before = re.search(r"^gateway VmRSS before: (?P<mib>[\d.]+) MiB$", out, re.M)
    after = re.search(r"^gateway VmRSS after 150 live sessions, one query each: "
                      r"(?P<mib>[\d.]+) MiB \(peak VmHWM (?P<peak>[\d.]+) MiB\)$", out, re.M)
    assert before and after, out
    assert float(before["mib"]) > 0 and float(after["mib"]) > 0
    assert float(after["peak"]) >= float(after["mib"])
    per = re.search(r"^per-session cost: (?P<kib>-?[\d.]+) KiB", out, re.M)
    assert per, out
    # the printed MiB are rounded to 0.1: the cost printed is theirs to that rounding
    assert float(per["kib"]) == pytest.approx(
        (float(after["mib"]) - float(before["mib"])) * 1024 / 150, abs=0.01 + 0.1 * 1024 / 150)
    assert re.search(r"^target: <= 300 MiB for one process: (met|NOT met)", out, re.M)
    assert not list(tmp_path.glob("siogw-bench-*"))
