"""``docs/usage.md`` names only commands and options that exist (issue 15, point 7).

Every ``siogw ...`` line of the page's shell blocks (continuation lines joined, comments
and ``[optional]`` parts dropped, shell variables and the page's placeholders given
sample values) is parsed by the real ``siogw`` argument parser: an unknown command,
verb or option, a missing required option or a bad choice fails the test with the line.
Section 8 ("Roles, step by step") is also walked end to end on a bench when the page
changes (``make demo`` runs the same story); this test keeps its spelling honest.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from siogw.cli import build_parser

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"

#: Sample values for the page's shell variables and placeholders (ids are numbers where
#: the command takes a number).
SAMPLES = {
    "$H": "/h", "$SIOGW_HOME": "/h", "$PWD": "/w", "$P": "controller", '"$K"': "pkcs11:x",
    "$APPLICANT_KEY_URI": "pkcs11:x", "ALERT_ID": "1", "NOTICE_ID": "1",
}


def _commands() -> list[tuple[int, str]]:
    """(line number, command) for each ``siogw`` command in the page's sh blocks."""
    out: list[tuple[int, str]] = []
    in_sh = False
    pending = ""
    start = 0
    for number, raw in enumerate(USAGE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("```"):
            in_sh = line in ("```sh", "```bash") and not in_sh
            pending = ""
            continue
        if not in_sh:
            continue
        if pending:
            pending += " " + line
        elif line.startswith("siogw "):
            pending, start = line, number
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        out.append((start, pending))
        pending = ""
    return out


def _argv(command: str) -> list[str]:
    text = re.sub(r"\s#.*$", "", command).rstrip()   # a trailing comment
    text = re.sub(r"\s\[[^\]]*\]", "", text)          # [optional parts]
    text = re.sub(r"\s*\|.*$", "", text)             # a pipe into another program
    text = re.sub(r"\s*&$", "", text)                # run in the background
    for name, value in sorted(SAMPLES.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(name, value)
    return shlex.split(text)[1:]


#: Every command line of the page but the elided examples ("...": not meant to run).
COMMANDS = [(n, c) for n, c in _commands() if "..." not in c]


def test_the_page_has_commands_of_every_role() -> None:
    nouns = {_argv(c)[1] for _, c in COMMANDS if c.startswith("siogw client ")}
    assert {"users", "certs", "maintenance", "emergencies", "applications", "transfers",
            "reports", "resolutions", "alerts", "outbox", "fm1", "lists", "login",
            "consent", "query"} <= nouns


@pytest.mark.parametrize(("number", "command"), COMMANDS,
                         ids=[f"line{n}" for n, _ in COMMANDS])
def test_command_parses(number: int, command: str) -> None:
    argv = _argv(command)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"docs/usage.md line {number}: `{command}` does not parse "
                    f"(exit {exc.code}): {err.getvalue().strip().splitlines()[-1:]}")
    assert getattr(args, "func", None) is not None or argv[0] in ("serve",), command
