"""The exit path every command of the project shares (``siogw``, ``siogw-client``).

A command's function returns its exit status; a :class:`~siogw_api.errors.SiogwError`
is printed as one line (``PROG: error: <diagnostics>``) and exits with the code of its
origin; Ctrl-C exits 130; standard input that ends before a prompt is answered exits as bad
input (8) in one line; a reader that went away (``siogw … | head``) is not an error
of ours and exits 141 quietly (141 = 128 + SIGPIPE, as a shell reports a program that
SIGPIPE ended).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from siogw_api.errors import InputError, SiogwError


def run(prog: str, args: argparse.Namespace) -> int:
    """Run ``args.func(args)`` (set by the parser) through the shared exit path."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so a closed pipe is seen now, not at the interpreter's exit
    except SiogwError as exc:
        print(f"{prog}: error: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except EOFError:
        # input() at the end of standard input (a closed or empty stdin): the same exit
        # as any other bad input (InputError), in one line.
        print(f"{prog}: error: the input ended before an answer was given", file=sys.stderr)
        return InputError.exit_code
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return int(code or 0)
