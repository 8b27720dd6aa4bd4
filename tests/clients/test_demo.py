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
    _assert_cli_steps(out)
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


def _steps(out: str) -> dict[str, str]:
    """The transcript's steps: title -> the step's lines."""
    parts = re.split(r"^\[\s*\d+\] (.*)$", out, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _step(steps: dict[str, str], start: str) -> str:
    found = [body for title, body in steps.items() if title.startswith(start)]
    assert len(found) == 1, f"no single step {start!r} in {list(steps)}"
    return found[0]


def _table_rows(body: str, command: str) -> list[str]:
    """The table lines printed after the command line ``$ siogw client COMMAND ...``."""
    after = body.split(f"$ siogw client {command}", 1)[1].splitlines()[1:]
    rows = []
    for line in after:
        if line.lstrip().startswith("$ ") or not line.startswith("        "):
            break
        rows.append(line.strip())
    return rows


def _assert_cli_steps(out: str) -> None:
    """Issue 15 point 7 and issue 16 point 9: the roles' steps through `siogw client`."""
    from siogw.demo import DEMO_PROVIDER_BIN, QUERY_JUSTIFICATION, REFUSED_JUSTIFICATION

    steps = _steps(out)
    # The operator enrols four people from the command line, each with a profile of
    # one home; the compliance officer with the provider's BIN.
    body = _step(steps, "Operator, from the command line")
    for who, role in (("controller", "controller"), ("prosecutor", "prosecutor"),
                      ("lists", "list_officer"), ("officer", "compliance_officer")):
        assert f"$ siogw client users enroll {who} " in body
        assert f"user {who} enrolled as {role}" in body
    assert f"--provider-bin {DEMO_PROVIDER_BIN} --profile operator" in body
    users = _table_rows(body, "users list")
    assert any(r.split()[:2] == ["officer", "compliance_officer"] for r in users), users

    # The List: the watched client had no match, the publication re-screened and raised
    # matches; the provider's outbox has the watched client; the FM-1 sent is flagged.
    body = _step(steps, "The List: the list officer publishes")
    assert "client C-17 registered for monitoring; screened now: SCREENING_OUTCOME_NO_MATCH" \
        in body
    assert "$ siogw client lists publish" in body and "--profile lists" in body
    found = re.search(r"re-screened (\d+) monitored subjects .*: (\d+) new match", body)
    assert found is not None and int(found.group(1)) >= 2 and int(found.group(2)) >= 2, body
    assert "outbox: C-17: SCREENING_OUTCOME_MATCH (terrorist v1, entry AFM-T-1)" in body
    sent = re.search(r"FM-1 (FM1-DEMO-\w+) \(suspicious_before\) of provider", out)
    assert sent is not None
    assert f"FM-1 {sent.group(1)} (suspicious_before): list_match True" in body
    assert f"the FM-1 {sent.group(1)} submitted above is flagged" in body

    # The controller's review: the analyst's rows with the justification, the refused
    # one with its reason; the agency's alert about the match; the review recorded.
    body = _step(steps, "Controller's monthly review")
    rows = _table_rows(body, "reports list")
    assert rows[0].split()[:3] == ["SEQ", "TIME", "USER"] and "JUSTIFICATION" in rows[0]
    answered = [r for r in rows if " analyst " in r and QUERY_JUSTIFICATION in r]
    assert len(answered) == 4, rows  # resources 1, 11, 50 and 51
    refused = [r for r in rows if REFUSED_JUSTIFICATION in r]
    assert len(refused) == 1 and "refused: " in refused[0], rows
    assert any("lists.match" in r for r in _table_rows(body, "alerts list"))
    review = _table_rows(body, "reports review")
    assert review[0].startswith("review ") and review[0].endswith(" recorded"), review
    assert any(r.split()[:2] == ["controller_id", "controller"] for r in review)
    overdue = _table_rows(body, "reports overdue")
    assert any(r.split()[0] == "controller" and r.split()[2] == "no" for r in overdue), overdue

    # The prosecutor: a resolution registered, its trail shows the analyst's rows.
    body = _step(steps, "Prosecutor's read under a resolution")
    assert re.search(r"resolution 12-345/2026 of \S+ registered: id \w+", body)
    trail = _table_rows(body, "resolutions trail")
    seqs = {r.split()[0] for r in trail if " analyst " in r and QUERY_JUSTIFICATION in r}
    assert seqs == {r.split()[0] for r in answered}
    assert any(REFUSED_JUSTIFICATION in r for r in trail)


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
