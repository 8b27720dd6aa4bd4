"""``siogw serve`` and ``siogw admin ...`` (bootstrap administration on the database).

``siogw admin`` acts directly on the control-plane database named by the configuration
(``$SIOGW_HOME/siogw.toml``); it is for bootstrapping the first operator and for
emergencies. Day-to-day administration goes through the signed AdminService. Module
imports are light: gRPC and the database are loaded inside the commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from siogw.errors import ConfigError


def _config(args: argparse.Namespace) -> Any:
    from server.config import load_config

    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "port", None) is not None:
        overrides.setdefault("server", {})["port"] = args.port
    if getattr(args, "host", None):
        overrides.setdefault("server", {})["host"] = args.host
    if getattr(args, "insecure", False):
        overrides.setdefault("tls", {})["enabled"] = False
    return load_config(args.home, overrides=overrides)


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from server.app import serve

    asyncio.run(serve(_config(args)))
    return 0


def _read(path: str | None) -> bytes:
    if not path:
        return b""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}", detail=str(exc)) from exc
    return data


def _cert_der(path: str | None) -> bytes:
    data = _read(path)
    if not data or b"-----BEGIN" not in data:
        return data
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate") from exc
    return cert.public_bytes(serialization.Encoding.DER)


def _spki_der(path: str | None) -> bytes:
    data = _read(path)
    if not data or b"-----BEGIN" not in data:
        return data
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM public key") from exc
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _admin(args: argparse.Namespace) -> int:
    from server.admin import execute
    from server.gen.siogw.v1 import admin_pb2, common_pb2
    from server.store import Store
    from siogw.timeutil import astana_iso, parse_iso

    command = admin_pb2.AdminCommand()
    op = args.admin_command
    if op == "enroll-user":
        command.enroll_user.CopyFrom(
            admin_pb2.EnrollUser(
                user_id=args.user_id, full_name=args.full_name, role=args.role,
                unit=args.unit, post=args.post, phone=args.phone,
                certificate_der=_cert_der(args.cert),
                device_public_key_der=_spki_der(args.device_key),
            )
        )
    elif op == "register-cert":
        command.register_certificate.CopyFrom(
            admin_pb2.RegisterCertificate(
                user_id=args.user_id, certificate_der=_cert_der(args.cert)
            )
        )
    elif op == "block":
        command.block_user.CopyFrom(admin_pb2.BlockUser(user_id=args.user_id, reason=args.reason))
    elif op == "unblock":
        command.unblock_user.CopyFrom(
            admin_pb2.UnblockUser(user_id=args.user_id, reason=args.reason)
        )
    elif op == "revoke-cert":
        command.revoke_certificate.CopyFrom(
            admin_pb2.RevokeCertificate(serial_hex=args.serial, reason=args.reason)
        )
    elif op == "maintenance":
        command.publish_maintenance.window.CopyFrom(
            common_pb2.MaintenanceWindow(
                id=args.id or "",
                starts_at=astana_iso(parse_iso(args.starts)),
                ends_at=astana_iso(parse_iso(args.ends)),
                description=args.description,
            )
        )
    config = _config(args)
    config.home.mkdir(parents=True, exist_ok=True)
    store = Store(config.effective_database_url).open()
    try:
        print(execute(None, store, command))
    finally:
        store.close()
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``admin`` to the ``siogw`` command."""
    serve = subparsers.add_parser("serve", help="run the gateway (gRPC, TLS)")
    serve.add_argument("--home", default=None, help="$SIOGW_HOME (default: env or ./var)")
    serve.add_argument("--host", default=None, help="bind address (overrides the config)")
    serve.add_argument("--port", type=int, default=None, help="port (0 = any free port)")
    serve.add_argument("--insecure", action="store_true", help="no TLS (local testing only)")
    serve.set_defaults(func=_serve)

    admin = subparsers.add_parser("admin", help="bootstrap administration on the database")
    admin.add_argument("--home", default=None, help="$SIOGW_HOME (default: env or ./var)")
    sub = admin.add_subparsers(dest="admin_command", metavar="OPERATION")
    sub.required = True

    p = sub.add_parser("enroll-user", help="register a user (and certificate, device key)")
    p.add_argument("--user-id", required=True)
    p.add_argument("--full-name", required=True)
    p.add_argument("--role", required=True,
                   help="agency_user, operator, controller, prosecutor, security_officer")
    p.add_argument("--unit", default="")
    p.add_argument("--post", default="")
    p.add_argument("--phone", default="", help="for SMS codes, e.g. +77011234567")
    p.add_argument("--cert", help="the user's token certificate (PEM or DER)")
    p.add_argument("--device-key", help="biometric device public key (PEM or DER SPKI)")

    p = sub.add_parser("register-cert", help="register another certificate to a user")
    p.add_argument("--user-id", required=True)
    p.add_argument("--cert", required=True)

    for name, text in (("block", "block a user (ends sessions)"), ("unblock", "unblock a user")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--user-id", required=True)
        p.add_argument("--reason", default="")

    p = sub.add_parser("revoke-cert", help="revoke a certificate by serial (effective at once)")
    p.add_argument("--serial", required=True, help="serial number in hex")
    p.add_argument("--reason", default="keyCompromise")

    p = sub.add_parser("maintenance", help="publish a maintenance window")
    p.add_argument("--starts", required=True, help="ISO 8601 with offset")
    p.add_argument("--ends", required=True, help="ISO 8601 with offset")
    p.add_argument("--description", default="planned maintenance")
    p.add_argument("--id", default=None)
    admin.set_defaults(func=_admin)
