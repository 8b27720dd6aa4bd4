"""``bench/screening.py`` runs and reports what it claims to (issue 16, point 6): a small
list, every row printed with a positive rate, the blocked index's recall not below the
unblocked scan's. No timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(?P<what>.{44}) +(?P<rate>[\d,.]+) +(?P<ratio>[\d.]+)x$")
RECALL = re.compile(r"blocked (\d+)/(\d+), unblocked (\d+)/(\d+)")


def test_screening_bench_runs_and_reports_every_row() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "screening.py"), "--entries", "3000",
         "--subjects", "200", "--baseline-subjects", "20", "--watched", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    rows = [m for line in out.splitlines() if (m := ROW.match(line))]
    assert len(rows) == 4, out
    assert all(float(m["rate"].replace(",", "")) > 0 for m in rows)
    assert "list of 3,000 entries" in out
    recall = RECALL.search(out)
    assert recall is not None, out
    blocked, total, unblocked, _ = (int(g) for g in recall.groups())
    assert total > 0 and blocked >= unblocked
    assert "re-screen of 200 watched clients" in out
