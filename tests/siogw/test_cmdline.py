"""The shared exit path (``siogw_api.cmdline.run``): issue 15, point 6."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap

import grpc
import pytest

from clients.errors import ClientError
from siogw_api import cmdline


def test_end_of_input_is_one_line_and_the_input_exit(capsys: pytest.CaptureFixture[str]) -> None:
    def ask(args: argparse.Namespace) -> int:
        input("code: ")
        return 0

    with open(os.devnull) as devnull, pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", devnull)
        code = cmdline.run("siogw", argparse.Namespace(func=ask))
    assert code == 8
    err = capsys.readouterr().err
    assert err == "siogw: error: the input ended before an answer was given\n"


def test_a_closed_pipe_exits_141_without_a_traceback() -> None:
    """Output that fits the buffer is only written at the flush: ``run`` flushes itself,
    so the closed pipe is handled there and not reported by the interpreter at exit."""
    program = textwrap.dedent("""
        import argparse, sys
        from siogw_api import cmdline
        def talk(args):
            print("a line for a reader that has gone")
            return 0
        sys.exit(cmdline.run("siogw", argparse.Namespace(func=talk)))
    """)
    read, write = os.pipe()
    os.close(read)  # the reader (`head`) is gone before the first byte
    try:
        proc = subprocess.run([sys.executable, "-c", program], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_client_error_says_the_servers_reason() -> None:
    exc = ClientError("Query", grpc.StatusCode.PERMISSION_DENIED,
                      "basis not allowed for your role", reason="BASIS_NOT_ALLOWED")
    assert str(exc) == (
        "Query refused: PERMISSION_DENIED (BASIS_NOT_ALLOWED): basis not allowed for your role"
    )
    assert exc.diagnostics() == str(exc)
    bare = ClientError("Logout", grpc.StatusCode.UNAVAILABLE, "")
    assert str(bare) == "Logout refused: UNAVAILABLE"
