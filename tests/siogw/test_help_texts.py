"""Issue 15, point 6: help texts say what each command does in the user's words.

Every ``--help`` of ``siogw`` and of each sub-command, at every depth (the argparse tree
is walked, so a command added later is covered), and of ``siogw-client``: no internal
requirement id such as ``(R6)`` or ``(R10)``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

#: An internal requirement id in parentheses: "(R6)", "(R15; recorded)", "(R1, R2)".
REQUIREMENT_ID = re.compile(r"\(R\d+\b")


def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, str]]:
    yield path, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")


def all_help() -> list[tuple[str, str]]:
    from clients.cli import build_parser as client_parser
    from siogw.cli import build_parser

    return [*walk(build_parser(), "siogw"), *walk(client_parser(), "siogw-client")]


def test_the_walk_reaches_the_leaves() -> None:
    commands = {path for path, _ in all_help()}
    for expected in ("siogw client query", "siogw client consent", "siogw client status",
                     "siogw token import-cert", "siogw verify", "siogw-client login"):
        assert expected in commands
    assert len(commands) > 40


def test_no_requirement_ids_in_help() -> None:
    found = [
        f"{path}: {line.strip()}"
        for path, text in all_help()
        for line in text.splitlines()
        if REQUIREMENT_ID.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("line", ["consent  show and sign the terms of use (R6)",
                                  "status  service status (R10)", "report (R15; recorded)"])
def test_the_pattern_catches_what_the_issue_names(line: str) -> None:
    assert REQUIREMENT_ID.search(line)
