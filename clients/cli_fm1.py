"""``siogw client fm1 submit|status|list|show``: the FM-1 reporting channel (issue 16).

* ``submit FILE.json`` -- sign the FM-1 message in FILE (a JSON object, ``docs/usage.md``
  "FM-1 messages") on the logged-in officer's token, submit it and verify the gateway's
  receipt offline: the acknowledgement signed by the pinned gateway key, the checkpoint
  by the audit key it endorses, the inclusion proof. ``--save DIR`` writes
  ``ack.json`` (for ``siogw verify``), ``bundle.json`` and ``audit-key.pem`` (for
  ``siogw audit prove --bundle DIR/bundle.json --keys DIR/audit-key.pem``).
* ``status MESSAGE_ID`` -- the message's status (late, deadline, receipt, amendments).
* ``list`` -- an officer's own messages, or an analyst's filtered list (``--provider``,
  ``--kind``, ``--since``, ``--until``, ``--late``, ``--list-match``); ``--csv`` prints the
  CSV export instead.
* ``show MESSAGE_ID`` -- the message as stored, with its status.

The connection options, profile and session are those of every ``siogw client`` command:
``clients.cli`` passes its helpers to :func:`register` (this module never imports it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siogw_api.errors import InputError

#: The most bytes ``submit`` reads from FILE.
MAX_FILE_BYTES = 64 * 1024


def register(
    sub: Any,
    add_connection: Callable[[argparse.ArgumentParser], None],
    client: Callable[..., Any],
    session_signer: Callable[[argparse.Namespace], Any],
) -> None:
    """Add ``fm1`` and its actions to the ``siogw client`` sub-parser action ``sub``."""
    fm1 = sub.add_parser("fm1", help="FM-1 messages: submit, status, list, show")
    actions = fm1.add_subparsers(dest="fm1_command", metavar="ACTION")
    actions.required = True
    helpers = {"client": client, "signer": session_signer}

    p = actions.add_parser("submit", help="sign and submit an FM-1 message; verify its receipt")
    add_connection(p)
    p.add_argument("file", type=Path, help="the FM-1 message, a JSON object")
    p.add_argument("--save", type=Path, metavar="DIR",
                   help="write ack.json, bundle.json and audit-key.pem to DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_submit, fm1_helpers=helpers)

    p = actions.add_parser("status", help="one message's status")
    add_connection(p)
    p.add_argument("message_id")
    p.add_argument("--provider", default="", help="the provider's BIN (analysts)")
    p.set_defaults(func=_cmd_status, fm1_helpers=helpers)

    p = actions.add_parser("list", help="list messages (an officer: their own provider's)")
    add_connection(p)
    p.add_argument("--provider", default="", help="the provider's BIN (analysts)")
    p.add_argument("--kind", default="")
    p.add_argument("--since", default="", help="received at or after (ISO 8601 with offset)")
    p.add_argument("--until", default="", help="received before (ISO 8601 with offset)")
    p.add_argument("--late", action="store_true", help="late messages only")
    p.add_argument("--list-match", action="store_true", help="messages with a list match")
    p.add_argument("--limit", type=int, default=0, help="page size (default 100)")
    p.add_argument("--after-id", type=int, default=0, help="the next page after this id")
    p.add_argument("--csv", action="store_true", help="print the CSV export")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list, fm1_helpers=helpers)

    p = actions.add_parser("show", help="a message as stored, with its status")
    add_connection(p)
    p.add_argument("message_id")
    p.add_argument("--provider", default="", help="the provider's BIN (analysts)")
    p.set_defaults(func=_cmd_show, fm1_helpers=helpers)


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")


def _read_message(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise InputError(f"cannot read {path}", detail=str(exc)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path} is over {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not UTF-8 JSON", detail=str(exc)) from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path} must hold one JSON object (the FM-1 message)")
    return doc


def _cmd_submit(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.fm1 import acknowledgement_json, audit_key_pem, proof_bundle, status_dict

    message = _read_message(args.file)
    helpers = args.fm1_helpers
    with helpers["client"](args, session=True) as client:
        done = client.fm1_submit(message, signer=helpers["signer"](args))
    st, info = done.response.status, done.verified
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / "ack.json").write_bytes(acknowledgement_json(done.response))
        (args.save / "bundle.json").write_text(
            json.dumps(proof_bundle(done.response, info.origin), indent=1, sort_keys=True)
            + "\n")
        (args.save / "audit-key.pem").write_bytes(audit_key_pem(info))
    if args.json:
        _print_json({"status": status_dict(st), "verified": info.as_dict()})
        return 0
    print(f"accepted: FM-1 {st.message_id} ({st.kind}, {st.action}) of provider "
          f"{st.provider_bin} at {st.received_at}")
    if st.deadline_at:
        lateness = (f"LATE by {st.lateness_seconds} s" if st.late else "on time")
        print(f"deadline {st.deadline_at}: {lateness}")
    print(f"receipt: seq {st.receipt.seq}, verified offline in a checkpoint of "
          f"{info.tree_size} records (acknowledgement signed by the gateway)")
    if args.save:
        print(f"saved ack.json, bundle.json, audit-key.pem to {args.save}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.fm1 import status_dict

    with args.fm1_helpers["client"](args, session=True) as client:
        status = client.fm1_status(args.message_id, args.provider)
    _print_json(status_dict(status))
    return 0


def _list_request(args: argparse.Namespace) -> Any:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from siogw_api.v1 import reporting_pb2

    if args.limit < 0 or args.after_id < 0:
        raise InputError("--limit and --after-id must not be negative")
    return reporting_pb2.ListFm1Request(
        provider_bin=args.provider, kind=args.kind, since=args.since, until=args.until,
        late_only=args.late, list_match_only=args.list_match, limit=args.limit,
        after_id=args.after_id)


def _cmd_list(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.fm1 import status_dict

    request = _list_request(args)
    with args.fm1_helpers["client"](args, session=True) as client:
        if args.csv:
            export = client.fm1_export(request)
            sys.stdout.write(bytes(export.csv).decode("utf-8"))
            return 0
        page = client.fm1_list(request)
    if args.json:
        _print_json({"messages": [status_dict(m) for m in page.messages],
                     "next_after_id": page.next_after_id if page.has_more else None})
        return 0
    for m in page.messages:
        flag = f" LATE {m.lateness_seconds}s" if m.late else ""
        print(f"{m.received_at}  {m.provider_bin}  {m.message_id}  {m.kind}/{m.action}{flag}")
    print(f"{len(page.messages)} message(s)"
          + (f"; more after --after-id {page.next_after_id}" if page.has_more else ""))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.fm1 import status_dict

    with args.fm1_helpers["client"](args, session=True) as client:
        message = client.fm1_show(args.message_id, args.provider)
    _print_json({"status": status_dict(message.status),
                 "message": json.loads(message.message_json)})
    return 0
