"""``siogw client ...`` (and ``siogw-client ...``): log in, sign consent, list resources,
query, status, shred.

:func:`register` adds the commands under ``siogw client``; :func:`main` runs the same
commands as ``siogw-client``, the command of the client-only distribution
(``clients/pyproject.toml``), which installs without the ``siogw`` package.

The session token lives in ``$SIOGW_HOME/client/session.json`` (mode 0600) between
invocations -- or, with ``--profile NAME`` (env ``SIOGW_PROFILE``), in
``$SIOGW_HOME/client/profiles/NAME/``, so that several people work from one home; or in
``--session-file PATH``. PINs come only from ``--pin-source env:VAR`` or ``file:PATH``
(or the key URI's ``pin-source``). ``query`` prints the verified result and writes
nothing to disk unless ``--export FILE`` (the gateway-signed result) or
``--export-request FILE`` (the signed query as sent) is given (R14); ``shred FILE``
destroys such an export. Exported files are written (and fsynced) before anything is
printed, so a reader that goes away early (``| head``) loses no export.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients import cli_admin, cli_fm1, cli_lists, cli_reports
from clients.exportfile import export_target
from siogw_api import cmdline
from siogw_api.errors import ConfigError, InputError

if TYPE_CHECKING:
    from clients.sync import GatewayClient


def _add_connection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (default: $SIOGW_HOME/client/config.json)")
    g.add_argument("--target", help="gateway address HOST:PORT (env SIOGW_GATEWAY)")
    g.add_argument("--ca-file", help="TLS CA certificate, PEM (env SIOGW_CA_FILE)")
    g.add_argument(
        "--gateway-cert", help="pinned gateway signing certificate (env SIOGW_GATEWAY_CERT)"
    )
    g.add_argument("--server-name", help="TLS server name to expect (when dialing an IP)")
    g.add_argument("--client-cert", help="TLS client certificate, PEM")
    g.add_argument("--client-key", help="TLS client key, PEM")
    g = p.add_argument_group("who (several users can share one $SIOGW_HOME)")
    g.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="use the session and settings of profile NAME, kept in "
        "$SIOGW_HOME/client/profiles/NAME/ (env SIOGW_PROFILE; default: $SIOGW_HOME/client/)",
    )
    g.add_argument(
        "--session-file",
        metavar="PATH",
        default=None,
        help="keep the session in PATH instead (its directory must be yours alone)",
    )


def register(subparsers: Any) -> None:
    """Add ``siogw client`` and its sub-commands."""
    client = subparsers.add_parser(
        "client", help="gateway client: login, consent, resources, query, status, shred"
    )
    client.set_defaults(client_prog="siogw client")
    sub = client.add_subparsers(dest="client_command", metavar="ACTION")
    sub.required = True
    add_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    """The ``siogw-client`` command: the sub-commands of ``siogw client``, on their own."""
    parser = argparse.ArgumentParser(
        prog="siogw-client",
        description="sio-gateway client: login, consent, resources, query, status, shred",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.set_defaults(client_prog="siogw-client")
    sub = parser.add_subparsers(dest="client_command", metavar="ACTION")
    sub.required = True
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``siogw-client`` (the client distribution's command); errors exit as in ``siogw``."""
    return cmdline.run("siogw-client", build_parser().parse_args(argv))


def add_commands(sub: Any) -> None:
    """The client's sub-commands (login, consent, ...) on the sub-parser action ``sub``."""
    p = sub.add_parser(
        "config",
        help="save where the gateway is and what to trust (config.json of the home or profile)",
    )
    _add_connection(p)
    p.add_argument("--show", action="store_true", help="only print the settings in effect")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("login", help="multi-factor login (token signature + SMS or biometric)")
    _add_connection(p)
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--key", required=True, help="key URI, e.g. pkcs11:token=alice;object=sign")
    p.add_argument(
        "--cert",
        help="the user's certificate (PEM/DER); default: the certificate stored on the token "
        "with the key (`siogw token import-cert`, or `siogw token rotate --ca-dir`)",
    )
    p.add_argument("--pin-source", help="env:VAR or file:PATH (never the PIN itself)")
    p.add_argument("--factor", choices=("sms", "biometric"), default="sms")
    p.add_argument(
        "--sms-outbox",
        help="read the code from the gateway's SMS stand-in outbox (demo/test); "
        "default: prompt on the terminal",
    )
    p.add_argument("--device-key", help="biometric: the software device key file (stand-in)")
    p.add_argument("--biometric-sample-file", help="biometric: the presented sample (stand-in)")
    p.set_defaults(func=_cmd_login)

    p = sub.add_parser(
        "consent",
        help="read the terms of use and sign your consent on the token (asks you to type "
        f'"{CONSENT_PHRASE}")',
    )
    _add_connection(p)
    p.add_argument("--show", action="store_true", help="only print the text, do not sign")
    p.add_argument(
        "--agree",
        action="store_true",
        help="scripts: agree without the prompt (the text's version and digest are printed)",
    )
    p.set_defaults(func=_cmd_consent)

    p = sub.add_parser("resources", help="list the information resources")
    _add_connection(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_resources)

    p = sub.add_parser("query", help="sign and send a query; print the verified result")
    _add_connection(p)
    p.add_argument("resource", type=int, help="catalogue number 1..52")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="query parameter, e.g. iin=900101300017 (repeatable)",
    )
    p.add_argument(
        "--basis", default="financial_monitoring", help="the legal basis of the query"
    )
    p.add_argument("--task-ref", required=True, help="task or case reference")
    p.add_argument("--justification", required=True, help="why the information is needed")
    p.add_argument(
        "--export",
        metavar="FILE",
        help="also write the gateway-signed result envelope (DSSE JSON, mode 0600) to FILE; "
        "destroy it with the shred action",
    )
    p.add_argument(
        "--export-request",
        metavar="FILE",
        help="also write the signed query as sent (DSSE JSON, mode 0600) to FILE, for "
        "offline checks with `siogw verify`",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser(
        "status", help="whether the gateway is serving, and its planned maintenance windows"
    )
    _add_connection(p)
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("logout", help="end the session and remove the session file")
    _add_connection(p)
    p.set_defaults(func=_cmd_logout)

    p = sub.add_parser(
        "shred", help="destroy exported files: overwrite, flush to disk, then delete"
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_shred)
    nouns = cli_reports.add_commands(
        sub, add_connection=_add_connection, client=_client, session_signer=_session_signer
    )
    cli_admin.add_admin_commands(sub, _add_connection, _client, _session_signer)
    cli_admin.add_reports_admin_verbs(nouns["reports"])
    cli_fm1.register(sub, _add_connection, _client, _session_signer)
    cli_lists.add_lists_command(sub, _add_connection, _client, _session_signer)


# --- helpers ----------------------------------------------------------------------------
def _home() -> Path:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import siogw_home

    return siogw_home()


#: The command's ``--profile`` / ``--session-file`` (set by :func:`_client`): a command
#: that calls :func:`_session_signer` without its arguments still signs as its profile.
_selected: argparse.Namespace | None = None


def _profile(args: argparse.Namespace | None) -> str | None:
    """The profile chosen by ``--profile`` or ``SIOGW_PROFILE`` (validated), or None."""
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import check_profile

    chosen = getattr(args, "profile", None) if args is not None else None
    return check_profile(chosen or os.environ.get("SIOGW_PROFILE") or None)


def _session_file(args: argparse.Namespace | None) -> str | None:
    return getattr(args, "session_file", None) if args is not None else None


def _settings(args: argparse.Namespace) -> Any:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import load_settings

    return load_settings(
        _home(),
        profile=_profile(args),
        overrides={
            "target": args.target,
            "ca_file": args.ca_file,
            "gateway_cert": args.gateway_cert,
            "server_name": args.server_name,
            "client_cert": args.client_cert,
            "client_key": args.client_key,
        },
    )


def _client(args: argparse.Namespace, *, session: bool) -> GatewayClient:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import load_session
    from clients.sync import GatewayClient

    global _selected
    _selected = args
    settings = _settings(args)
    token = user = None
    if session:
        stored = load_session(_home(), _profile(args), session_file=_session_file(args))
        token, user = stored.session_token, stored.user_id
    return GatewayClient(
        settings.target,
        ca_file=settings.ca_file,
        gateway_certificate=settings.gateway_cert,
        client_cert_file=settings.client_cert,
        client_key_file=settings.client_key,
        server_name=settings.server_name,
        session_token=token,
        user_id=user,
    )


def _session_signer(args: argparse.Namespace | None = None) -> Any:
    """The signer of the logged-in user of ``args``'s profile (by default: the profile of
    the last :func:`_client` of this command)."""
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import load_session
    from signing import load_signer

    args = args if args is not None else _selected
    stored = load_session(_home(), _profile(args), session_file=_session_file(args))
    return load_signer(stored.key_uri, pin_source=stored.pin_source, certificate=stored.cert_file)


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--param expects NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")


# --- commands ---------------------------------------------------------------------------
def _cmd_login(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import StoredSession, save_session
    from signing import load_signer

    signer = load_signer(args.key, pin_source=args.pin_source, certificate=args.cert)
    sms_provider = None
    device = None
    sample = None
    if args.factor == "sms":
        if args.sms_outbox:
            # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
            from clients.outbox import latest_code, line_count

            start = line_count(args.sms_outbox)

            def sms_provider(destination: str) -> str:
                return latest_code(args.sms_outbox, destination=destination, after=start)

        else:

            def sms_provider(destination: str) -> str:
                try:
                    return input(f"SMS code sent to {destination}: ").strip()
                except EOFError:
                    raise InputError(
                        "no SMS code: the input ended before one was typed",
                        detail="type the code at the prompt, or give --sms-outbox",
                    ) from None

    else:
        # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
        from clients.biometric import SoftwareDeviceKey

        if not args.device_key or not args.biometric_sample_file:
            raise InputError("biometric login needs --device-key and --biometric-sample-file")
        device = SoftwareDeviceKey.load(args.device_key)
        sample = Path(args.biometric_sample_file).read_bytes()
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from signing.pin_ages import pin_change_for_key

    pin_changed_at = pin_change_for_key(_home(), args.key)  # §12: reported at login
    with _client(args, session=False) as client:
        result = client.login(
            args.user,
            signer,
            factor=args.factor,
            sms_code_provider=sms_provider,
            device_key=device,
            biometric_sample=sample,
            pin_changed_at=pin_changed_at,
        )
    path = save_session(
        _home(),
        profile=_profile(args),
        session_file=_session_file(args),
        session=StoredSession(
            target=client.target,
            user_id=args.user,
            session_token=result.session_token,
            expires_at=result.expires_at,
            key_uri=args.key,
            cert_file=str(Path(args.cert).resolve()) if args.cert else None,
            pin_source=args.pin_source,
        ),
    )
    print(f"logged in as {args.user} ({args.factor}); session until {result.expires_at}")
    print(f"session saved to {path} (mode 0600)")
    if result.pin_changed_at:
        print(f"token PIN last changed {result.pin_changed_at}")
    if result.pin_warning:
        print(f"warning: {result.pin_warning}")
    if result.consent_required:
        again = f" --profile {_profile(args)}" if _profile(args) else ""
        print(f"consent {result.consent_version} required: "
              f"run `{args.client_prog} consent{again}`")
    return 0


#: What the user types to agree to the terms of use (``consent``).
CONSENT_PHRASE = "I agree"


def _typed_agreement() -> bool:
    """Ask for the consent phrase on the terminal; False on anything else or at EOF."""
    try:
        answer = input(f'Type "{CONSENT_PHRASE}" to sign this consent on your token: ')
    except EOFError:
        print(file=sys.stderr)
        return False
    return answer.strip().casefold() == CONSENT_PHRASE.casefold()


def _cmd_consent(args: argparse.Namespace) -> int:
    with _client(args, session=True) as client:
        consent = client.get_consent()
        print(f"terms of use, version {consent.version}:\n{consent.text}\n")
        print(f"version {consent.version}, SHA-256 of the text: {consent.sha256.hex()}")
        if args.show:
            return 0
        sys.stdout.flush()
        if not args.agree and not _typed_agreement():
            print(f"consent not given: nothing was signed (type {CONSENT_PHRASE!r}, or pass "
                  "--agree)", file=sys.stderr)
            return 1
        signed = client.sign_consent(consent, signer=_session_signer())
    print(f"consent signed at {signed.signed_at} (version {consent.version})")
    return 0


def _cmd_resources(args: argparse.Namespace) -> int:
    with _client(args, session=True) as client:
        resources = client.list_resources()
    if args.json:
        _print_json(
            [
                {
                    "number": r.number,
                    "name": r.name,
                    "access_right": r.access_right,
                    "parameters": list(r.parameters),
                }
                for r in resources
            ]
        )
        return 0
    for r in resources:
        print(f"{r.number:3d}  {r.access_right:9s}  {r.name}  [{', '.join(r.parameters)}]")
    return 0


def _write_export(path: str, data: bytes) -> Path:
    """A new file, 0600, ``O_EXCL|O_NOFOLLOW``: never an existing file or a planted symlink,
    and not in a directory others may write (unless it is sticky, like ``/tmp``).

    The data goes to a temporary file beside the target first, which is linked to the
    target name only once it is complete and fsynced (``link`` refuses an existing name,
    as ``O_EXCL`` does): a write error (disk full) leaves no partial file with result
    data, neither under the target name nor as the temporary one (issue 14, finding 12).
    """
    # Deferred: the session module is loaded by the commands that use it.
    from clients.session import create_private_file

    target, parent = export_target(path)
    temporary = parent / f".{target.name}.{secrets.token_hex(8)}.part"
    try:
        create_private_file(temporary, data)
    except FileExistsError:  # not ours: leave it
        raise InputError(f"cannot create {target}", detail="temporary name taken") from None
    except OSError as exc:  # ours (O_EXCL succeeded) or never made: nothing partial stays
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise InputError(f"cannot create {target}", detail=exc.strerror) from exc
    try:
        os.link(temporary, target, follow_symlinks=False)
    except FileExistsError:
        raise InputError(f"refusing to overwrite {target}") from None
    except OSError as exc:
        raise InputError(f"cannot create {target}", detail=exc.strerror) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return target


def _cmd_query(args: argparse.Namespace) -> int:
    params = _parse_params(args.param)
    # The export files are checked before the query is sent (a query counts once) ...
    exports = [name for name in (args.export, args.export_request) if name]
    for name in exports:
        export_target(name)
    if len(exports) == 2 and Path(exports[0]).absolute() == Path(exports[1]).absolute():
        raise InputError("--export and --export-request name the same file")
    signer = _session_signer(args)
    with _client(args, session=True) as client:
        prepared = client.prepare_query(
            args.resource,
            params,
            args.basis,
            args.task_ref,
            args.justification,
            signer=signer,
        )
        outcome = client.send_query(prepared)
    # ... and written (fsynced) before anything is printed: a reader that goes away
    # (`| head`) cannot cost the user an export.
    written: list[str] = []
    if args.export_request:
        target = _write_export(args.export_request, prepared.envelope.to_json())
        written.append(f"exported the signed query {prepared.request_id} to {target}")
    if args.export:
        target = _write_export(args.export, outcome.result_envelope.to_json())
        written.append(
            f"exported the signed result to {target}; "
            f"destroy it with `{args.client_prog} shred`"
        )
    for line in written:
        print(line, file=sys.stderr)
    if args.json:
        _print_json(outcome.as_dict())
    else:
        right = "truncated by the gateway" if outcome.truncated else outcome.access_right
        print(f"resource {outcome.resource}: {outcome.resource_name} [{right}]")
        print(f"request {outcome.request_id}, produced {outcome.produced_at}")
        if outcome.receipt:
            r = outcome.receipt
            print(f"audit receipt: seq {r.seq}, tree size {r.tree_size}")
        print("gateway signature: verified against the pinned certificate")
        _print_json(outcome.data)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    """Merge the connection flags into the home's (or the profile's) ``config.json``."""
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.session import CONFIG_FILE, client_dir, write_settings

    profile = _profile(args)
    given = {
        key: value
        for key, value in (
            ("target", args.target),
            ("ca_file", args.ca_file),
            ("gateway_cert", args.gateway_cert),
            ("server_name", args.server_name),
            ("client_cert", args.client_cert),
            ("client_key", args.client_key),
        )
        if value is not None
    }
    if given and not args.show:
        path = client_dir(_home(), profile) / CONFIG_FILE
        doc: dict[str, Any] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read {path}", detail=str(exc)) from exc
            doc = loaded if isinstance(loaded, dict) else {}
        for key in ("ca_file", "gateway_cert", "client_cert", "client_key"):
            if key in given:  # a relative path means the one from here, not from the home
                given[key] = str(Path(given[key]).expanduser().absolute())
        doc.update(given)
        print(f"settings saved to {write_settings(_home(), doc, profile)}")
    settings = _settings(args)
    for key in ("target", "ca_file", "gateway_cert", "server_name", "client_cert", "client_key"):
        value = getattr(settings, key)
        print(f"{key}: {value if value is not None else '-'}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    with _client(args, session=False) as client:
        status = client.service_status()
    state = "serving" if status.serving else "NOT serving"
    print(f"gateway {state} at {status.now}" + (f": {status.reason}" if status.reason else ""))
    if status.current:
        print(f"maintenance now until {status.current.ends_at}: {status.current.description}")
    for w in status.windows:
        print(f"maintenance {w.starts_at} .. {w.ends_at}: {w.description}")
    return 0 if status.serving else 1


def _cmd_logout(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.errors import ClientError
    from clients.session import clear_session

    try:
        with _client(args, session=True) as client:
            client.logout()
    except ClientError as exc:
        print(f"gateway did not confirm the logout: {exc.diagnostics()}", file=sys.stderr)
    clear_session(_home(), _profile(args), session_file=_session_file(args))
    print("logged out; session file removed")
    return 0


def _cmd_shred(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, tokens): `--help` stays light.
    from clients.shred import shred

    for name in args.files:
        size = shred(name)
        print(f"shredded {name} ({size} bytes overwritten, unlinked)")
    return 0
