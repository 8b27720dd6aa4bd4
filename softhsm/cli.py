"""``siogw hsm``: create the project-local SoftHSM store, initialise and list tokens.

PINs are read from a file (``--pin-file``, mode 600) or an environment variable
(``--pin-env``), never from the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from signing.pins import resolve_pin
from siogw_api.errors import ConfigError
from softhsm.store import TokenStore


def _pin(args: argparse.Namespace, kind: str) -> str:
    path = getattr(args, f"{kind}_pin_file")
    env = getattr(args, f"{kind}_pin_env")
    label = "SO PIN" if kind == "so" else "user PIN"
    if (path is None) == (env is None):
        flag = "--so-pin" if kind == "so" else "--pin"
        raise ConfigError(f"give exactly one of {flag}-file or {flag}-env for the {label}")
    spec = f"env:{env}" if env is not None else f"file:{Path(path).absolute()}"
    return resolve_pin(spec, f"{label} of token {args.label!r}")


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(args.home)


def _setup(args: argparse.Namespace) -> int:
    store = _store(args)
    print(f"SOFTHSM2_CONF={store.conf_path}")
    return 0


def _init_token(args: argparse.Namespace) -> int:
    so_pin = _pin(args, "so")
    user_pin = _pin(args, "user")
    info = _store(args).init_token(args.label, so_pin, user_pin)
    print(f"initialised token {info.label!r} serial {info.serial}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for info in _store(args).list_tokens():
        if info.initialized:
            print(f"{info.label}\tserial={info.serial}\tslot={info.slot_id}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hsm = subparsers.add_parser("hsm", help="project-local SoftHSM token store")
    hsm_sub = hsm.add_subparsers(dest="hsm_command", metavar="ACTION")
    hsm_sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--home", type=Path, default=None,
            help="sio-gateway home (default: $SIOGW_HOME or ~/.local/state/siogw)",
        )

    setup = hsm_sub.add_parser("setup", help="create the token store and softhsm2.conf")
    common(setup)
    setup.set_defaults(func=_setup)

    init = hsm_sub.add_parser("init-token", help="initialise a new token (PINs from file/env)")
    common(init)
    init.add_argument("label", help="token label (at most 32 bytes)")
    init.add_argument("--so-pin-file", help="file holding the SO PIN (mode 600)")
    init.add_argument("--so-pin-env", help="environment variable holding the SO PIN")
    init.add_argument("--pin-file", dest="user_pin_file", help="file holding the user PIN")
    init.add_argument("--pin-env", dest="user_pin_env", help="variable holding the user PIN")
    init.set_defaults(func=_init_token)

    lst = hsm_sub.add_parser("list", help="list initialised tokens")
    common(lst)
    lst.set_defaults(func=_list)
