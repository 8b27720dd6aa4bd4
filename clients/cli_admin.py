"""``siogw client NOUN VERB``: every role's work on the running gateway (issue 15).

The nouns: ``users``, ``certs``, ``maintenance``, ``emergencies``, ``applications``,
``transfers``, ``alerts`` and ``outbox``; :func:`add_reports_admin_verbs` adds ``review``
and ``overdue`` to the ``reports`` noun. Each command is an AdminService command signed on
the caller's token (the signer of the session ``siogw client login`` saved, as ``query``
uses) and sent to the running gateway; the gateway checks the caller's role. The
applicant's commands (``applications file|status|refusal``) need no session: they are
signed with the applicant's own key (``--key``/``--cert``).

Output: a one-line summary and an aligned table (lists) or ``field: value`` lines (one
object) for people; ``--json`` prints the typed result as JSON for scripts. Errors exit
as every ``siogw`` command does (:mod:`siogw_api.cmdline`): a refusal by the gateway
(wrong role, unknown user, ...) prints the gateway's reason and exits 9.

The connection options, the client and the session's signer come from
:mod:`clients.cli` (passed to :func:`add_admin_commands`), so these commands share
``login``'s configuration, profile and session handling. This module is light: the
client library is loaded when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siogw_api.errors import InputError
from siogw_api.timeutil import parse_iso

#: (header, field) per list result message; a field's "" shows as "-".
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "UserEntry": (("USER", "user_id"), ("ROLE", "role"), ("STATUS", "status"),
                  ("NAME", "full_name"), ("UNIT", "unit"), ("POST", "post"),
                  ("REASON", "status_reason")),
    "CertificateEntry": (("FINGERPRINT", "fingerprint"), ("USER", "user_id"),
                         ("SERIAL", "serial_hex"), ("EXPIRES", "not_after"),
                         ("REVOKED", "revoked_at"), ("WARNINGS", "warnings")),
    "ApplicationEntry": (("ID", "id"), ("STATUS", "status"), ("IIN", "iin"),
                         ("NAME", "full_name"), ("ROLE", "requested_role"),
                         ("RECEIVED", "received_at"), ("DEADLINE", "deadline_at"),
                         ("OVERDUE", "overdue"), ("USER", "user_id")),
    "TransferEntry": (("ID", "id"), ("USER", "user_id"), ("UNIT", "unit"), ("POST", "post"),
                      ("ORDER", "order_number"), ("ORDER SIGNED", "order_signed_at"),
                      ("STATUS", "status"), ("LATE", "late")),
    "NoticeEntry": (("ID", "id"), ("CREATED", "created_at"), ("USER", "user_id"),
                    ("KIND", "kind"), ("REASON", "reason"), ("READ", "read_at")),
    "AlertEntry": (("ID", "id"), ("RAISED", "raised_at"), ("RULE", "rule"),
                   ("USER", "user_id"), ("BLOCKING", "blocking"), ("SUMMARY", "summary"),
                   ("ACKNOWLEDGED", "acknowledged_at")),
    "Emergency": (("ID", "id"), ("ONSET", "onset_at"), ("RESOLVED", "resolved_at"),
                  ("CAUSES", "causes"), ("MEASURES", "measures")),
    "MaintenanceWindow": (("ID", "id"), ("STARTS", "starts_at"), ("ENDS", "ends_at"),
                          ("DESCRIPTION", "description")),
    "ReviewStatusEntry": (("CONTROLLER", "controller_id"), ("LAST REVIEW", "last_review_at"),
                          ("OVERDUE", "overdue"), ("DUE SINCE", "due_since")),
}


# --- what the commands get from clients.cli ---------------------------------------------
@dataclass(frozen=True)
class _Hooks:
    connection: Callable[[argparse.ArgumentParser], None]
    client: Callable[..., Any]
    session_signer: Callable[[argparse.Namespace], Any]


_hooks: _Hooks | None = None


def _h() -> _Hooks:
    if _hooks is None:  # pragma: no cover - add_admin_commands always runs first
        raise RuntimeError("clients.cli_admin.add_admin_commands was not called")
    return _hooks


# --- output -----------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or "-"
    text = str(value)
    return text.replace("\n", " ") if text else "-"


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as aligned columns under a header (the last column is not padded)."""
    cells = [[h for h, _ in columns]] + [[_cell(r.get(f, "")) for _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for line in cells:
        padded = [c.ljust(w) for c, w in zip(line[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines)


def format_fields(doc: dict[str, Any]) -> str:
    """One object as ``field: value`` lines (empty fields left out)."""
    width = max((len(k) for k in doc), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in doc.items()
                     if v not in ("", None, [], 0) or isinstance(v, bool))


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")


def _show_result(result: Any) -> None:
    # Deferred: the client library is loaded when a command runs (`--help` stays light).
    from clients._common import message_dict

    if result is None:
        return
    fields = result.DESCRIPTOR.fields
    if len(fields) == 1 and fields[0].is_repeated and fields[0].message_type is not None:
        items = getattr(result, fields[0].name)
        columns = COLUMNS.get(fields[0].message_type.name)
        rows = [message_dict(m) for m in items]
        if columns is None:
            columns = tuple((k.upper(), k) for k in (rows[0] if rows else {}))
        if rows:
            print(format_table(rows, columns))
        return
    print(format_fields(message_dict(result)))


def _output(args: argparse.Namespace, outcome: Any) -> int:
    if args.json:
        _print_json(outcome.as_dict())
        return 0
    print(outcome.message)
    _show_result(outcome.result)
    if outcome.receipt is not None:
        print(f"audit receipt: seq {outcome.receipt.seq}, tree size {outcome.receipt.tree_size}",
              file=sys.stderr)
    return 0


def _run_admin(args: argparse.Namespace, call: Callable[[Any, Any], Any]) -> int:
    """Run ``call(client, signer)`` with the session's client and signer; print it."""
    hooks = _h()
    with hooks.client(args, session=True) as client:
        outcome = call(client, hooks.session_signer(args))
    return _output(args, outcome)


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}", detail=exc.strerror) from exc


def _certificate_der(path: str) -> bytes:
    # Deferred: the client library is loaded when a command runs (`--help` stays light).
    from cryptography.hazmat.primitives.serialization import Encoding

    from clients._common import load_certificates

    certs = load_certificates(_read_file(path, "certificate"))
    if len(certs) != 1:
        raise InputError(f"{path} holds {len(certs)} certificates; give one")
    return certs[0].public_bytes(Encoding.DER)


def _time(text: str, what: str) -> Any:
    try:
        return parse_iso(text)
    except InputError:
        raise InputError(f"{what} must be ISO 8601 with an offset, e.g. "
                         "2026-12-05T09:00:00+05:00") from None


# --- building the parsers ---------------------------------------------------------------
def _noun(sub: Any, name: str, text: str, description: str) -> Any:
    p = sub.add_parser(name, help=text, description=description)
    verbs = p.add_subparsers(dest=f"{name}_verb", metavar="VERB")
    verbs.required = True
    return verbs


def _verb(verbs: Any, name: str, text: str, func: Callable[[argparse.Namespace], int],
          *, json_option: bool = True) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = verbs.add_parser(name, help=text, description=text)
    _h().connection(p)
    if json_option:
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=func)
    return p


def add_admin_commands(
    sub: Any,
    add_connection: Callable[[argparse.ArgumentParser], None],
    client: Callable[..., Any],
    session_signer: Callable[[argparse.Namespace], Any],
) -> None:
    """Add the nouns to ``siogw client`` (``sub``: its sub-parser action); the hooks are
    :mod:`clients.cli`'s connection options, client factory and session signer."""
    global _hooks
    _hooks = _Hooks(add_connection, client, session_signer)

    v = _noun(sub, "users", "enrol, block, unblock, list and show users (operator, ...)",
              "Users of the gateway. Enrolment is the operator's; blocking is also the "
              "controller's and the security officer's.")
    p = _verb(v, "enroll", "enrol a user with their token certificate", _users_enroll)
    p.add_argument("user_id")
    p.add_argument("--full-name", required=True)
    p.add_argument("--role", required=True,
                   help="agency_user, operator, controller, prosecutor, security_officer, "
                   "compliance_officer (with --provider-bin) or list_officer")
    p.add_argument("--unit", default="")
    p.add_argument("--post", default="")
    p.add_argument("--phone", default="", help="for SMS codes, e.g. +77011234567")
    p.add_argument("--cert", help="the user's token certificate (PEM or DER)")
    p.add_argument("--provider-bin", default="",
                   help="compliance_officer: the BIN of the provider they report for")
    p = _verb(v, "block", "block a user; their sessions end at once", _users_block)
    p.add_argument("user_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--kind", choices=("suspension", "dismissal", "violation"),
                   default="suspension")
    p = _verb(v, "unblock", "unblock a user", _users_unblock)
    p.add_argument("user_id")
    p.add_argument("--reason", required=True)
    p = _verb(v, "list", "list the enrolled users", _users_list)
    p.add_argument("--role", default="", help="only users of this role")
    p = _verb(v, "show", "show one user", _users_show)
    p.add_argument("user_id")

    v = _noun(sub, "certs", "register, revoke and list certificates; import a CRL",
              "Certificates of the users' tokens (the security officer's and the operator's).")
    p = _verb(v, "register", "register a (rotated) certificate to a user", _certs_register)
    p.add_argument("user_id")
    p.add_argument("cert", help="the certificate (PEM or DER)")
    p.add_argument("--token-label", default="", help="the token holding the key (PIN age)")
    p = _verb(v, "revoke", "revoke a certificate; its sessions end at once", _certs_revoke)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--serial", default="", help="serial number in hex")
    which.add_argument("--fingerprint", default="", help="SHA-256 of the DER, hex")
    p.add_argument("--reason", default="keyCompromise")
    p = _verb(v, "import-crl", "import a CRL: registered certificates on it are revoked",
              _certs_import_crl)
    p.add_argument("crl", help="the CRL file (PEM or DER)")
    p = _verb(v, "list", "list certificates with expiry and warnings (PIN age, ...)",
              _certs_list)
    p.add_argument("--user", default="", help="only this user's certificates")

    v = _noun(sub, "maintenance", "publish, cancel and list maintenance windows",
              "Planned maintenance windows (the operator publishes and cancels them; every "
              "signed-in user may list them).")
    p = _verb(v, "publish", "publish a maintenance window", _maintenance_publish)
    p.add_argument("--starts", required=True, help="ISO 8601 with offset")
    p.add_argument("--ends", required=True, help="ISO 8601 with offset")
    p.add_argument("--description", default="planned maintenance")
    p.add_argument("--id", default="", help="the window's id (default: generated)")
    p.add_argument("--urgent", action="store_true",
                   help="it cannot wait the notice period (limits.maintenance_notice_hours)")
    p = _verb(v, "cancel", "cancel a published window that has not ended",
              _maintenance_cancel)
    p.add_argument("window_id")
    p.add_argument("--reason", required=True)
    _verb(v, "list", "list the announced windows (not ended, not cancelled)",
          _maintenance_list)

    v = _noun(sub, "emergencies", "record, resolve and list emergencies",
              "The Journal of emergencies (the operator records; the security officer reads).")
    p = _verb(v, "record", "record an emergency", _emergencies_record)
    p.add_argument("--onset", required=True, help="ISO 8601 with offset")
    p.add_argument("--causes", required=True)
    p.add_argument("--measures", required=True)
    p.add_argument("--resolved", default="", help="ISO 8601 with offset, if resolved")
    p = _verb(v, "resolve", "mark an emergency resolved", _emergencies_resolve)
    p.add_argument("emergency_id")
    p.add_argument("--resolved-at", default="", help="ISO 8601 with offset (default: now)")
    p.add_argument("--measures", default="", help="replaces the measures taken")
    p = _verb(v, "list", "list the journal", _emergencies_list)
    p.add_argument("--open", action="store_true", help="only unresolved ones")

    v = _noun(sub, "applications", "file and follow applications; register or refuse them",
              "Applications for access. The applicant files one and follows it with their own "
              "key (no session); the operator lists, registers and refuses them.")
    p = _verb(v, "file", "file an application, signed on the applicant's token",
              _applications_file)
    _applicant_key(p)
    p.add_argument("--iin", required=True)
    p.add_argument("--full-name", required=True)
    p.add_argument("--phone", required=True, help="+7 and 10 digits (for SMS codes)")
    p.add_argument("--role", default="agency_user", help="the requested role")
    p.add_argument("--basis", default="", help="the legal basis the role may name")
    p.add_argument("--unit", default="")
    p.add_argument("--post", default="")
    p.add_argument("--corrects", default=None, help="the refused application this corrects")
    p = _verb(v, "status", "the applicant's view of an application", _applications_status)
    p.add_argument("application_id")
    _applicant_key(p)
    p = _verb(v, "refusal", "fetch the operator's signed refusal of an application",
              _applications_refusal)
    p.add_argument("application_id")
    _applicant_key(p)
    p.add_argument("--save", metavar="FILE",
                   help="also write the signed refusal (DSSE JSON) to FILE for `siogw verify`")
    p = _verb(v, "list", "list applications", _applications_list)
    p.add_argument("--status", choices=("pending", "registered", "refused"), default="")
    p.add_argument("--overdue", action="store_true", help="only pending ones past the deadline")
    p = _verb(v, "register", "register an application: the applicant becomes a user",
              _applications_register)
    p.add_argument("application_id")
    p.add_argument("--user-id", default="", help="the new user's id (default: generated)")
    p = _verb(v, "refuse", "refuse an application (signed on your token)",
              _applications_refuse)
    p.add_argument("application_id")
    p.add_argument("--reason", required=True, help="false, incomplete or stale data: which")

    v = _noun(sub, "transfers", "file, list and apply transfer edits",
              "Transfers of users to another unit or post: the user files the edit signed on "
              "their token; the operator applies it within 24 hours.")
    p = _verb(v, "file", "file your transfer edit (signed on your token)", _transfers_file)
    p.add_argument("--unit", required=True)
    p.add_argument("--post", required=True)
    p.add_argument("--order-number", required=True)
    p.add_argument("--order-signed-at", required=True, help="ISO 8601 with offset")
    p = _verb(v, "list", "list transfer edits", _transfers_list)
    p.add_argument("--late", action="store_true", help="only those filed late")
    p.add_argument("--pending", action="store_true", help="only those not applied")
    p.add_argument("--overdue", action="store_true",
                   help="only those still pending 24 hours after filing")
    p = _verb(v, "apply", "apply a transfer edit to the user's record", _transfers_apply)
    p.add_argument("transfer_id")

    v = _noun(sub, "alerts", "list and acknowledge violation alerts",
              "Alerts the violation rules raised (the controller's).")
    p = _verb(v, "list", "list alerts", _alerts_list)
    p.add_argument("--open", action="store_true", help="only unacknowledged ones")
    p.add_argument("--user", default="", help="only alerts about this user")
    p = _verb(v, "ack", "acknowledge an alert", _alerts_ack)
    p.add_argument("alert_id", type=int)

    v = _noun(sub, "outbox", "read the notices to the agency",
              "Notices to the agency about blocked users (the controller's).")
    p = _verb(v, "list", "list unread notices", _outbox_list)
    p.add_argument("--all", action="store_true", help="read ones too")
    p = _verb(v, "read", "mark a notice read", _outbox_read)
    p.add_argument("notice_id", type=int)



def add_reports_admin_verbs(verbs: Any) -> None:
    """Add ``review`` and ``overdue`` to the ``reports`` noun (``verbs``: its sub-parser
    action). Needs :func:`add_admin_commands` to have run (for the connection hooks)."""
    p = _verb(verbs, "review", "record your review of a period (controller, monthly)",
              _reports_review)
    p.add_argument("--from", dest="period_start", required=True, help="ISO 8601 with offset")
    p.add_argument("--to", dest="period_end", required=True, help="ISO 8601 with offset")
    p.add_argument("--note", required=True, help="what was reviewed and found")
    p = _verb(verbs, "overdue", "controllers whose monthly review is overdue", _reports_overdue)
    p.add_argument("--all", action="store_true", help="every controller with their status")


def _applicant_key(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", required=True, help="the applicant's key URI (pkcs11:...)")
    p.add_argument("--cert", required=True, help="the applicant's certificate (PEM/DER)")
    p.add_argument("--pin-source", help="env:VAR or file:PATH (never the PIN itself)")


def _applicant_signer(args: argparse.Namespace) -> Any:
    # Deferred: the client library is loaded when a command runs (`--help` stays light).
    from signing import load_signer

    return load_signer(args.key, pin_source=args.pin_source, certificate=args.cert)


# --- users --------------------------------------------------------------------------------
def _users_enroll(args: argparse.Namespace) -> int:
    der = _certificate_der(args.cert) if args.cert else None
    return _run_admin(args, lambda c, s: c.enroll_user(
        args.user_id, args.full_name, args.role, unit=args.unit, post=args.post,
        phone=args.phone, certificate=der, signer=s, provider_bin=args.provider_bin))


def _users_block(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.block_user(
        args.user_id, args.reason, kind=args.kind, signer=s))


def _users_unblock(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.unblock_user(args.user_id, args.reason, signer=s))


def _users_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_users(role=args.role, signer=s))


def _users_show(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.show_user(args.user_id, signer=s))


# --- certificates ---------------------------------------------------------------------------
def _certs_register(args: argparse.Namespace) -> int:
    der = _certificate_der(args.cert)
    return _run_admin(args, lambda c, s: c.register_certificate(
        args.user_id, der, token_label=args.token_label, signer=s))


def _certs_revoke(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.revoke_certificate(
        serial_hex=args.serial, fingerprint=args.fingerprint, reason=args.reason, signer=s))


def _certs_import_crl(args: argparse.Namespace) -> int:
    crl = _read_file(args.crl, "CRL")
    return _run_admin(args, lambda c, s: c.import_crl(crl, signer=s))


def _certs_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_certificates(user_id=args.user, signer=s))


# --- maintenance ----------------------------------------------------------------------------
def _maintenance_publish(args: argparse.Namespace) -> int:
    starts, ends = _time(args.starts, "--starts"), _time(args.ends, "--ends")
    return _run_admin(args, lambda c, s: c.publish_maintenance(
        starts, ends, args.description, window_id=args.id, urgent=args.urgent, signer=s))


def _maintenance_cancel(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.cancel_maintenance(
        args.window_id, args.reason, signer=s))


def _maintenance_list(args: argparse.Namespace) -> int:
    # Deferred: the client library is loaded when a command runs (`--help` stays light).
    from clients._common import message_dict

    with _h().client(args, session=True) as client:
        windows = client.list_maintenance()
    rows = [message_dict(w) for w in windows]
    if args.json:
        _print_json({"windows": rows})
        return 0
    print(f"{len(rows)} maintenance window(s)")
    if rows:
        print(format_table(rows, COLUMNS["MaintenanceWindow"]))
    return 0


# --- emergencies ----------------------------------------------------------------------------
def _emergencies_record(args: argparse.Namespace) -> int:
    onset = _time(args.onset, "--onset")
    resolved = _time(args.resolved, "--resolved") if args.resolved else None
    return _run_admin(args, lambda c, s: c.record_emergency(
        onset, args.causes, args.measures, resolved_at=resolved, signer=s))


def _emergencies_resolve(args: argparse.Namespace) -> int:
    resolved = _time(args.resolved_at, "--resolved-at") if args.resolved_at else None
    return _run_admin(args, lambda c, s: c.resolve_emergency(
        args.emergency_id, resolved_at=resolved, measures=args.measures, signer=s))


def _emergencies_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_emergencies(open_only=args.open, signer=s))


# --- applications ---------------------------------------------------------------------------
def _print_status(args: argparse.Namespace, status: Any) -> int:
    # Deferred: the client library is loaded when a command runs (`--help` stays light).
    from clients._common import message_dict

    doc = message_dict(status)
    if args.json:
        _print_json(doc)
    else:
        print(f"application {status.application_id}: {status.status}")
        print(format_fields(doc))
    return 0


def _applications_file(args: argparse.Namespace) -> int:
    signer = _applicant_signer(args)
    with _h().client(args, session=False) as client:
        status = client.file_application(
            signer, iin=args.iin, full_name=args.full_name, phone=args.phone,
            requested_role=args.role, basis=args.basis, unit=args.unit, post=args.post,
            corrects=args.corrects)
    return _print_status(args, status)


def _applications_status(args: argparse.Namespace) -> int:
    signer = _applicant_signer(args)
    with _h().client(args, session=False) as client:
        status = client.application_status(args.application_id, signer)
    return _print_status(args, status)


def _applications_refusal(args: argparse.Namespace) -> int:
    signer = _applicant_signer(args)
    with _h().client(args, session=False) as client:
        refusal = client.application_refusal(args.application_id, signer)
    if args.save:
        # Deferred: the export writer lives with the other client commands.
        from clients.session import create_private_file

        try:
            create_private_file(Path(args.save), refusal.document)
        except FileExistsError:
            raise InputError(f"refusing to overwrite {args.save}") from None
    if args.json:
        _print_json({"payload": refusal.payload, "document": refusal.document.decode()})
        return 0
    p = refusal.payload
    print(f"application {args.application_id} refused by {p.get('refused_by', '?')} "
          f"at {p.get('refused_at', '?')}")
    print(f"reason: {p.get('reason', '?')}")
    if p.get("corrections_allowed"):
        print("you may file a corrected application (applications file --corrects ID)")
    if args.save:
        print(f"the signed refusal is in {args.save}; check it with `siogw verify`")
    return 0


def _applications_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_applications(
        status=args.status, overdue_only=args.overdue, signer=s))


def _applications_register(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.register_application(
        args.application_id, user_id=args.user_id, signer=s))


def _applications_refuse(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.refuse_application(
        args.application_id, args.reason, signer=s))


# --- transfers ------------------------------------------------------------------------------
def _transfers_file(args: argparse.Namespace) -> int:
    signed_at = _time(args.order_signed_at, "--order-signed-at")
    return _run_admin(args, lambda c, s: c.file_transfer(
        args.unit, args.post, args.order_number, signed_at, signer=s))


def _transfers_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_transfers(
        late_only=args.late, pending_only=args.pending, overdue_only=args.overdue, signer=s))


def _transfers_apply(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.apply_transfer(args.transfer_id, signer=s))


# --- alerts and the outbox --------------------------------------------------------------------
def _alerts_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_alerts(
        open_only=args.open, user_id=args.user, signer=s))


def _alerts_ack(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.ack_alert(args.alert_id, signer=s))


def _outbox_list(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.read_outbox(include_read=args.all, signer=s))


def _outbox_read(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.mark_notice_read(args.notice_id, signer=s))


# --- reports: the controller's reviews --------------------------------------------------------
def _reports_review(args: argparse.Namespace) -> int:
    start, end = _time(args.period_start, "--from"), _time(args.period_end, "--to")
    return _run_admin(args, lambda c, s: c.record_review(start, end, args.note, signer=s))


def _reports_overdue(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda c, s: c.list_overdue_reviews(
        all_controllers=args.all, signer=s))
