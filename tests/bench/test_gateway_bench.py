"""``bench/gateway.py`` runs end to end and reports what it claims to (issue 3, point 11).

One short run (a fraction of a second per level, two gateway processes, two floor
processes): the three servers answer, every full-path and floor answer verifies, and the
table carries a row per level with the three rates and ratios consistent with them.
No figure is asserted beyond "positive": timings are the bench's to print, not a test's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ROW = re.compile(
    r"^\s*(?P<conc>\d+) \|\s+(?P<full>[\d.]+)\s+[\d.]+\s+[\d.]+\s+(?P<err>\d+) \|"
    r"\s+(?P<floor>\d+)\s+[\d.]+\s+[\d.]+ \|\s+(?P<echo>\d+)\s+[\d.]+\s+[\d.]+ \|"
    r"\s+(?P<r_full>[\d.]+)\s+(?P<r_floor>[\d.]+)\s+(?P<r_ff>[\d.]+)\s*$"
)


@pytest.mark.slow
def test_gateway_bench_runs_and_reports_every_level(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("SIOGW_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gateway.py"), "--seconds", "0.4",
         "--levels", "1,4", "--workers", "2", "--channels", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    rows = {int(m["conc"]): m for line in out.splitlines() if (m := ROW.match(line))}
    assert sorted(rows) == [1, 4], out
    for m in rows.values():
        full, floor, echo = float(m["full"]), float(m["floor"]), float(m["echo"])
        assert full > 0 and floor > 0 and echo > 0, out
        assert m["err"] == "0", out
        # the ratios printed are the rates' (to the table's rounding)
        assert float(m["r_full"]) == pytest.approx(full / echo, abs=0.002 + 0.6 / echo)
        assert float(m["r_ff"]) == pytest.approx(full / floor, abs=0.002 + 0.6 / floor)
    assert "every full-path and floor answer verified" in out
    assert re.search(r"lowest full/echo ratio [\d.]+: target >= 0\.5 (met|NOT met)", out)
    assert "2 process(es)" in out
    # the bench cleans up its temporary home (nothing left but what pytest made)
    assert not list(tmp_path.glob("siogw-bench-*"))
