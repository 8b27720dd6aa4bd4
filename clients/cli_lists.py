"""``siogw client lists ...``: the List and the Lists (issue 16, point 6).

* ``publish FILE --list NAME [--format csv|xml] [--source-reference TEXT]`` -- the
  agency's list officer signs the file on the session's token and publishes it as the
  list's next version; prints the version, its digest and the re-screening counts;
* ``show`` -- the current version of each list;
* ``screen [--iin IIN/BIN] [--name NAME] [--birth-date YYYY-MM-DD] [--client-ref REF]`` --
  a provider's compliance officer screens a client: match / possible_match / no_match
  with the list versions and the matched entries;
* ``watch CLIENT_REF [--iin ...] [--name ...] [--birth-date ...]`` -- registers a client
  for re-screening whenever a list changes (screened at once);
* ``outbox [--all]`` -- the provider's new matches found by re-screening.

Hooked into ``siogw client`` by one line of :func:`clients.cli.add_commands`, which passes
its connection helpers (this module does not import :mod:`clients.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siogw_api.errors import InputError

#: The lists a version may be published to.
LIST_NAMES = ("terrorist", "ft_extremism", "proliferation")


def add_lists_command(
    sub: Any,
    add_connection: Callable[[argparse.ArgumentParser], None],
    client: Callable[..., Any],
    session_signer: Callable[[argparse.Namespace], Any],
) -> None:
    """Add ``lists`` and its actions to the client's sub-parser action ``sub``."""
    lists = sub.add_parser("lists", help="the List and the Lists: publish, show, screen, "
                                         "watch, outbox")
    actions = lists.add_subparsers(dest="lists_command", metavar="ACTION")
    actions.required = True

    def run(fn: Callable[[Any, argparse.Namespace], Any]) -> Callable[[argparse.Namespace],
                                                                     int]:
        def command(args: argparse.Namespace) -> int:
            with client(args, session=True) as gw:
                if getattr(args, "lists_command", "") == "publish":
                    gw.signer = session_signer(args)
                _print(fn(gw, args))
            return 0
        return command

    p = actions.add_parser("publish", help="sign and publish a new version of a list "
                                           "(the agency's list officer)")
    add_connection(p)
    p.add_argument("file", metavar="FILE", help="the list file (CSV or XML)")
    p.add_argument("--list", required=True, choices=LIST_NAMES, dest="list_name")
    p.add_argument("--format", choices=("csv", "xml"),
                   help="the file's format (default: by its suffix)")
    p.add_argument("--source-reference", default="",
                   help="where the list comes from (the decision, the order)")
    p.set_defaults(func=run(_publish))

    p = actions.add_parser("show", help="the current version of each list")
    add_connection(p)
    p.set_defaults(func=run(lambda gw, args: gw.lists()))

    p = actions.add_parser("screen", help="screen a client against every list (a "
                                          "provider's compliance officer)")
    add_connection(p)
    _subject_options(p)
    p.add_argument("--client-ref", default="", help="your reference of the client")
    p.set_defaults(func=run(lambda gw, args: gw.screen(
        iin_bin=args.iin, name=args.name, birth_date=args.birth_date,
        client_ref=args.client_ref)))

    p = actions.add_parser("watch", help="re-screen a client whenever a list changes")
    add_connection(p)
    p.add_argument("client_ref", metavar="CLIENT_REF", help="your reference of the client")
    _subject_options(p)
    p.set_defaults(func=run(lambda gw, args: gw.watch(
        args.client_ref, iin_bin=args.iin, name=args.name, birth_date=args.birth_date)))

    p = actions.add_parser("outbox", help="new matches found by re-screening")
    add_connection(p)
    p.add_argument("--all", action="store_true", help="read ones too")
    p.set_defaults(func=run(lambda gw, args: gw.screening_outbox(include_read=args.all)))


def _subject_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--iin", default="", help="IIN (a person) or BIN (an entity)")
    p.add_argument("--name", default="", help="name, in Cyrillic or Latin")
    p.add_argument("--birth-date", default="", help="YYYY-MM-DD or YYYY")


def _publish(gw: Any, args: argparse.Namespace) -> Any:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients._lists import list_format

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}", detail=str(exc)) from exc
    return gw.publish_list(args.list_name, content, list_format(path, args.format),
                           source_reference=args.source_reference)


def _print(message: Any) -> None:
    # Deferred: protobuf is loaded only when a command runs.
    from google.protobuf import json_format

    doc = json_format.MessageToDict(message, preserving_proto_field_name=True)
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")
