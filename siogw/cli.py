"""The ``siogw`` command: one argparse tree, every error through the error root's exit.

Each package contributes its sub-commands through a ``register(subparsers)`` function in
its ``cli`` module; a sub-command sets ``func(args) -> int`` as its default. Modules are
imported here, so their top level must stay light (no gRPC channels, no PKCS#11 loads).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from siogw import __version__
from siogw_api import cmdline

#: Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "softhsm.cli",
    "signing.cli",
    "audit.cli",
    "server.cli",
    "clients.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siogw",
        description="sio-gateway: signed queries to the IES information resources",
    )
    parser.add_argument("--version", action="version", version=f"siogw {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that part is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cmdline.run("siogw", build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
