"""``siogw client reports …`` and ``siogw client resolutions …``: what a departmental
controller (§21) and a prosecutor (§22) do from the command line.

* ``reports list``: the queries of agency users -- who asked what, about whom, why,
  and what came of it (answered, or refused and for what reason) -- filtered by period,
  user, unit, resource, basis, task, subject, outcome and refusal reason; a table for
  people, ``--json`` for scripts; ``--prove`` checks every row's inclusion proof in the
  audit log against a signed checkpoint.
* ``reports export --out FILE``: the same rows as CSV, streamed from the gateway into a
  new private file (mode 0600). The CSV is written beside the target first and named
  ``FILE`` only once complete: an error leaves no file. Cells that a spreadsheet would
  run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) start with ``'``.
* ``resolutions register``: sign a resolution (number, date, users, period) on the
  prosecutor's token and register it; ``resolutions trail ID``: read the queries
  within its scope.

Every command runs over the session of ``siogw client login``. :func:`add_commands`
takes the connection helpers of :mod:`clients.cli` as arguments (this module does not
import it: ``clients.cli`` imports this one).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from clients.exportfile import stream_to_new_file
from siogw_api.errors import InputError

#: Widest cells of the table (longer text is clipped; ``--json`` has it whole). In a
#: cell, characters that are not printable (terminal escapes, newlines) are shown as
#: ``?``: a user's text cannot rewrite the controller's screen.
_TABLE_WIDTH = {"justification": 48, "task": 16, "subject": 14, "user": 14, "unit": 14}


class _Helpers:
    """The connection helpers of :mod:`clients.cli` (given to :func:`add_commands`)."""

    add_connection: Callable[[argparse.ArgumentParser], None]
    client: Callable[..., Any]
    session_signer: Callable[[argparse.Namespace], Any]


_H = _Helpers()


def add_commands(
    sub: Any,
    *,
    add_connection: Callable[[argparse.ArgumentParser], None],
    client: Callable[..., Any],
    session_signer: Callable[[argparse.Namespace], Any],
) -> dict[str, Any]:
    """Add ``reports`` and ``resolutions`` to the client's sub-parser action ``sub``;
    returns their verb sub-parser actions by noun (``{"reports": …, "resolutions": …}``)
    so that other modules can add verbs."""
    _H.add_connection, _H.client, _H.session_signer = add_connection, client, session_signer

    reports = sub.add_parser(
        "reports", help="the queries of agency users, for the controllers' review (§21)",
        description="List or export the queries of agency users: who asked, about whom, "
        "why, and what came of it. For departmental controllers.")
    verbs = reports.add_subparsers(dest="reports_command", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("list", help="list queries (a table, or --json)")
    add_connection(p)
    _add_filters(p)
    _add_paging(p)
    p.add_argument("--prove", action="store_true",
                   help="check each row's inclusion proof against a signed checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list)

    p = verbs.add_parser("export", help="write queries to a CSV file (formula-safe cells)")
    add_connection(p)
    _add_filters(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the CSV file to create (mode 0600; never overwritten; nothing "
                   "is left behind on an error)")
    p.set_defaults(func=_cmd_export)
    # `reports review` and `reports overdue` are added by clients.cli_admin
    # (add_reports_admin_verbs), called from clients.cli.add_commands.

    res = sub.add_parser(
        "resolutions", help="a prosecutor's resolutions and the audit trail they open (§22)",
        description="Register a resolution signed on your token, then read the queries "
        "of the users it names within its period. For prosecutors.")
    rverbs = res.add_subparsers(dest="resolutions_command", metavar="VERB")
    rverbs.required = True

    p = rverbs.add_parser("register", help="sign a resolution on your token and register it")
    add_connection(p)
    p.add_argument("--number", required=True, help="the resolution's number, e.g. 12-345")
    p.add_argument("--date", required=True, help="the resolution's date, YYYY-MM-DD")
    p.add_argument("--user", action="append", required=True, dest="users", metavar="USER",
                   help="a user whose queries it covers (repeatable)")
    p.add_argument("--period-start", required=True,
                   help="start of the period, ISO 8601 with offset (inclusive)")
    p.add_argument("--period-end", required=True,
                   help="end of the period, ISO 8601 with offset (exclusive)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_register)

    p = rverbs.add_parser("trail", help="read the queries within a resolution's scope")
    add_connection(p)
    p.add_argument("resolution_id", help="the id `resolutions register` printed")
    _add_filters(p)
    _add_paging(p)
    p.add_argument("--prove", action="store_true",
                   help="check each row's inclusion proof against a signed checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_trail)
    return {"reports": verbs, "resolutions": rverbs}


def _add_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (all given must match)")
    g.add_argument("--user", action="append", default=[], dest="users", metavar="USER",
                   help="the user who asked (repeatable)")
    g.add_argument("--since", default="", help="from this time, ISO 8601 with offset")
    g.add_argument("--until", default="", help="before this time, ISO 8601 with offset")
    g.add_argument("--unit", default="", help="the user's unit")
    g.add_argument("--resource", default="", help="resource number 1..52")
    g.add_argument("--basis", default="", help="legal basis")
    g.add_argument("--task", default="", help="task or case reference")
    g.add_argument("--subject", default="", help="the IIN/BIN or other identifier asked about")
    g.add_argument("--outcome", choices=("success", "refused"), help="success or refused")
    g.add_argument("--reason", default="",
                   help="refusal reason, e.g. PERMISSION_DENIED (see docs/errors.md)")


def _add_paging(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paging")
    g.add_argument("--limit", type=int, default=100, help="rows per page (1..1000)")
    g.add_argument("--after-seq", type=int, default=None,
                   help="start after this seq (the `next` a previous page printed)")
    g.add_argument("--all", action="store_true", help="follow every page to the end")


def _filter(args: argparse.Namespace, *, scoped: bool = False) -> Any:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients._reports import ReportFilter

    if args.resource and not args.resource.isdigit():
        raise InputError(f"--resource expects a number 1..52, got {args.resource!r}")
    common = {"resource": args.resource, "basis": args.basis, "task": args.task,
              "outcome": args.outcome or "", "unit": args.unit, "subject": args.subject,
              "reason": args.reason}
    if scoped:  # the trail: users and period are the request's own fields
        return ReportFilter(**common)
    return ReportFilter(user_ids=tuple(args.users), since=args.since, until=args.until,
                        **common)


def _check_paging(args: argparse.Namespace) -> None:
    if not 1 <= args.limit <= 1000:
        raise InputError("--limit must be 1..1000")
    if args.after_seq is not None and args.after_seq < 0:
        raise InputError("--after-seq must be 0 or more")


def _pages(fetch: Callable[[int | None], Any], args: argparse.Namespace) -> tuple[list[Any], Any]:
    """Rows of one page (or of every page with ``--all``) and the last page."""
    rows: list[Any] = []
    after = args.after_seq
    while True:
        page = fetch(after)
        rows.extend(page.rows)
        if not (args.all and page.has_more):
            return rows, page
        after = page.next_after_seq


def _safe(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _clip(text: str, width: int) -> str:
    text = _safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _outcome(row: Any) -> str:
    if row.outcome == "success":
        return "answered" + (" (truncated)" if row.truncated else "")
    return f"refused: {row.reason or row.status_code or '?'}"


def _print_rows(rows: list[Any], page: Any, *, as_json: bool, prove: bool) -> None:
    if as_json:
        doc = {"rows": [r.as_dict() for r in rows], "has_more": page.has_more,
               "next_after_seq": page.next_after_seq if page.has_more else None}
        if prove:
            doc["tree_size"] = page.tree_size
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
        return
    header = ("SEQ", "TIME", "USER", "UNIT", "RES", "SUBJECT", "OUTCOME", "TASK",
              "JUSTIFICATION")
    table = [header]
    for r in rows:
        table.append((
            str(r.seq) + ("✓" if r.proved else ""), r.time[:19].replace("T", " "),
            _clip(r.user_id, _TABLE_WIDTH["user"]), _clip(r.unit, _TABLE_WIDTH["unit"]),
            str(r.resource_number or ""), _clip(r.subject, _TABLE_WIDTH["subject"]),
            _clip(_outcome(r), 40), _clip(r.task, _TABLE_WIDTH["task"]),
            _clip(r.justification, _TABLE_WIDTH["justification"])))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    summary = f"{len(rows)} row(s)"
    if page.has_more:
        summary += f"; more after seq {page.next_after_seq} (--after-seq {page.next_after_seq})"
    if prove:
        proved = sum(1 for r in rows if r.proved)
        summary += (f"; {proved} proved in the audit log (checkpoint of {page.tree_size} "
                    "records, signed by the gateway's audit key)")
    print(summary)


# --- commands ---------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    _check_paging(args)
    flt = _filter(args)
    with _H.client(args, session=True) as client:
        rows, page = _pages(lambda after: client.list_queries(
            flt, after_seq=after, limit=args.limit, prove=args.prove), args)
    _print_rows(rows, page, as_json=args.json, prove=args.prove)
    return 0


def _cmd_trail(args: argparse.Namespace) -> int:
    _check_paging(args)
    flt = _filter(args, scoped=True)
    with _H.client(args, session=True) as client:
        rows, page = _pages(lambda after: client.read_audit_trail(
            args.resolution_id, user_ids=list(args.users) or None, since=args.since,
            until=args.until, flt=flt, after_seq=after, limit=args.limit,
            prove=args.prove), args)
    _print_rows(rows, page, as_json=args.json, prove=args.prove)
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    with _H.client(args, session=True) as client:
        res = client.register_resolution(args.number, args.date, list(args.users),
                                         args.period_start, args.period_end,
                                         signer=_H.session_signer(args))
    if args.json:
        json.dump(res.as_dict(), sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(f"resolution {_safe(res.number)} of {res.date} registered: id {res.id}")
    print(f"scope: {', '.join(_safe(u) for u in res.user_ids)}; "
          f"{res.period_start} .. {res.period_end}")
    print(f"read it with `{args.client_prog} resolutions trail {res.id}`")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    flt = _filter(args)
    with _H.client(args, session=True) as client:
        target, info = stream_to_new_file(
            args.out, lambda out: client.export_queries_csv(out, flt))
    print(f"{info.rows} row(s) ({info.bytes} bytes) written to {target}", file=sys.stderr)
    return 0
