"""``bench/fm1.py`` runs end to end and prints a row per level: submissions/s beside the
crypto floor measured in the same run (issue 16). No figure is asserted beyond
"positive": timings are the bench's to print, not a test's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\s*(?P<level>\d+) \|\s+(?P<full>[\d.]+) \|\s+(?P<floor>[\d.]+) \|"
                 r"\s+(?P<ratio>[\d.]+)\s*$")


@pytest.mark.slow
def test_fm1_bench_runs_and_reports_every_level(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("SIOGW_DATABASE_URL", None)
    env.pop("SOFTHSM2_CONF", None)  # the bench makes its own token store
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fm1.py"), "--messages", "6",
                           "--levels", "1,2"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {int(m["level"]): m for line in proc.stdout.splitlines()
            if (m := ROW.match(line))}
    assert sorted(rows) == [1, 2], proc.stdout
    for m in rows.values():
        full, floor = float(m["full"]), float(m["floor"])
        assert full > 0 and floor > 0
        assert abs(float(m["ratio"]) - full / floor) < 0.02
