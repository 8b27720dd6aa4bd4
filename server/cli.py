"""``siogw serve`` and ``siogw admin ...`` (bootstrap administration on the database).

Every offline admin action is recorded in the audit log under the actor ``siogw-admin``;
the log is opened before anything changes, so while a running gateway holds it the
command refuses (use the signed AdminService then).

``siogw admin`` acts directly on the control-plane database named by the configuration
(``$SIOGW_HOME/siogw.toml``); it is for bootstrapping the first operator (with the
gateway stopped) and for emergencies. Day-to-day administration goes through the signed
AdminService: ``siogw client users ...``, ``certs``, ``maintenance``, ... (issue 15). Module
imports are light: gRPC and the database are loaded inside the commands.

Operations views that make sense offline (issue 5), on the same database:
``siogw admin applications [--status S] [--overdue]``, ``siogw admin alerts [--open]
[--user U]``, ``siogw admin overdue-reviews [--all]`` (read-only; nothing is recorded, so
they need no audit log) and ``siogw admin report --as CONTROLLER [filters] [--csv FILE]``
(R15: the export is recorded in the audit log, so it opens the log with the gateway's
signer; with a gateway running, use AuditService.ExportQueriesCsv instead).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from siogw_api.errors import ConfigError, SiogwError


def _config(args: argparse.Namespace) -> Any:
    # Deferred: each command loads what it needs (gRPC, the database).
    from server.config import load_config

    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "port", None) is not None:
        overrides.setdefault("server", {})["port"] = args.port
    if getattr(args, "host", None):
        overrides.setdefault("server", {})["host"] = args.host
    if getattr(args, "insecure", False):
        overrides.setdefault("tls", {})["enabled"] = False
    if getattr(args, "workers", None) is not None:
        overrides.setdefault("server", {})["workers"] = args.workers
    if getattr(args, "log_format", None):
        overrides.setdefault("logging", {})["format"] = args.log_format
    return load_config(args.home, overrides=overrides)


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    # Deferred: each command loads what it needs (gRPC, the database).
    from server.files import restrict_umask

    restrict_umask()  # everything created under the home: 0600 / 0700 (server.files)
    config = _config(args)
    prepare_metrics_dir(config)  # before prometheus-client is imported (server.app)
    # Deferred: each command loads what it needs (gRPC, the database).
    from server.app import serve
    from server.logformat import configure_logging

    configure_logging(config.logging)

    asyncio.run(serve(config))
    return 0


#: The environment variable of prometheus-client's multi-process mode.
PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(config: Any) -> None:
    """With ``[metrics] port`` set and ``--workers N`` > 1: prometheus-client's
    multi-process directory, ``$SIOGW_HOME/run/metrics`` (0700, emptied: what a killed
    gateway left is gone), named in ``PROMETHEUS_MULTIPROC_DIR`` before the library is
    imported, so that the spawned workers inherit it (:mod:`server.metrics`)."""
    import shutil

    # Deferred: each command loads what it needs (gRPC, the database).
    from server.files import private_dir

    path = config.home / "run" / "metrics"
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # a previous gateway's samples (emptied even with metrics off)
    if not config.metrics.port or config.workers <= 1:
        return
    import sys

    if "prometheus_client" in sys.modules:  # too late for multi-process mode
        raise ConfigError("metrics with --workers: prometheus-client was loaded before "
                          "its multi-process directory was set")
    private_dir(config.home / "run", follow_links=False)
    os.environ[PROMETHEUS_MULTIPROC_ENV] = str(private_dir(path, follow_links=False))


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
    # Deferred: each command loads what it needs (gRPC, the database).
    from server.admin import execute
    from server.files import private_dir, restrict_umask
    from server.store import Store
    from siogw_api.timeutil import astana_iso, parse_iso
    from siogw_api.v1 import admin_pb2, common_pb2

    command = admin_pb2.AdminCommand()
    op = args.admin_command
    if op == "enroll-user":
        command.enroll_user.CopyFrom(
            admin_pb2.EnrollUser(
                user_id=args.user_id, full_name=args.full_name, role=args.role,
                unit=args.unit, post=args.post, phone=args.phone,
                certificate_der=_cert_der(args.cert),
                device_public_key_der=_spki_der(args.device_key),
                provider_bin=args.provider_bin,
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
    restrict_umask()  # what this creates under the home: 0600 / 0700 (server.files)
    private_dir(config.home)
    # Admin actions are kept in the audit log like the AdminService's (R11): the log is
    # opened first, so with it unavailable (a running gateway holds it) nothing changes.
    with _offline_audit_log(config, "use the signed AdminService") as log:
        store = Store(config.effective_database_url).open()
        try:
            which = command.WhichOneof("command") or ""
            # The write-ahead rule (server.writeahead): the command is durable in the log
            # before it acts; its outcome names it by seq.
            request = _record_offline(log, which, "requested", "",
                                      payload=command.SerializeToString(deterministic=True))
            try:
                message = execute(None, store, command)
            except Exception as exc:
                _record_offline(log, which, "failure",  # our wording only: it is kept
                                exc.public_message() if isinstance(exc, SiogwError)
                                else "internal error", request_seq=request.seq)
                raise
            _record_offline(log, which, "success", message, request_seq=request.seq)
            print(message)
        finally:
            store.close()
    return 0


@contextlib.contextmanager
def _offline_audit_log(config: Any, alternative: str) -> Iterator[Any]:
    """The gateway's audit log, opened by this process (fails while a gateway holds it)."""
    # Deferred: each command loads what it needs (gRPC, the database).
    from audit import AuditLog
    from server.assembly import AUDIT_ORIGIN, load_audit_signer
    from siogw_api.errors import AuditError

    signer = load_audit_signer(config)
    try:
        log = AuditLog.open(config.effective_audit_dir, signer, AUDIT_ORIGIN)
    except AuditError as exc:
        raise AuditError(f"{exc.message}; while the gateway runs, {alternative}",
                         detail=exc.detail) from exc
    try:
        yield log
    finally:
        log.close()


def _record_offline(log: Any, command: str, outcome: str, message: str, *,
                    request_seq: int | None = None, payload: bytes | None = None) -> Any:
    # Deferred: each command loads what it needs (gRPC, the database).
    from audit import AuditRecord

    details: dict[str, Any] = {"command": command, "channel": "siogw admin (offline)"}
    if message:
        details["message"] = message
    if request_seq is not None:
        details["request_seq"] = request_seq
    return log.append_sync(AuditRecord(
        actor=OFFLINE_ACTOR, event="admin", outcome=outcome, details=details, payload=payload,
    ))


# --- operations views (issue 5) ----------------------------------------------------------
#: The offline administrator acts with the role each view needs (it has the database).
OFFLINE_ACTOR = "siogw-admin"


def _read_only_record(event_type: str, actor: str, outcome: str, details: Any) -> None:
    # Deferred: each command loads what it needs (gRPC, the database).
    from audit.errors import AuditUnavailable

    raise AuditUnavailable(f"an offline view may not record {event_type!r}")


def _ops_offline(config: Any, store: Any, record: Any, index: Any = None) -> Any:
    # Deferred: each command loads what it needs (gRPC, the database).
    from server.certcheck import TrustMaterial
    from server.ops import AuditIndexQueries, Operations
    from server.store.certificates import DbRevocationStore

    trust = TrustMaterial(config.trust.anchors, config.trust.crls, DbRevocationStore(store))
    return Operations.open(store.engine, record=record, trust=trust.store(),
                           index=AuditIndexQueries(index) if index is not None else _NoIndex())


class _NoIndex:
    def query_page(self, flt: Any, *, after_seq: Any, limit: int,
                   upto_seq: Any = None) -> list[Any]:
        raise ConfigError("this view has no audit index")

    def top_seq(self) -> int | None:
        raise ConfigError("this view has no audit index")


def _ops_view(args: argparse.Namespace) -> int:
    # Deferred: each command loads what it needs (gRPC, the database).
    from server.ops import Actor, Role
    from server.store import Store
    from siogw_api.timeutil import astana_iso, now_utc

    config = _config(args)
    store = Store(config.effective_database_url).open()
    try:
        ops = _ops_offline(config, store, _read_only_record)
        op = args.admin_command
        if op == "applications":
            actor = Actor(OFFLINE_ACTOR, Role.OPERATOR)
            apps = (ops.applications.overdue(actor) if args.overdue
                    else ops.applications.applications(actor, status=args.status))
            now = now_utc()
            for a in apps:
                late = " OVERDUE" if a.overdue(now) else ""
                print(f"{a.id} {a.status} {a.requested_role} {a.full_name!r} "
                      f"received {astana_iso(a.received_at)} deadline {a.deadline_astana}{late}")
            print(f"{len(apps)} application(s)")
        elif op == "alerts":
            actor = Actor(OFFLINE_ACTOR, Role.CONTROLLER)
            alerts = ops.rules.alerts(actor, open_only=args.open, user_id=args.user)
            for al in alerts:
                ack = f" acknowledged by {al.acknowledged_by}" if al.acknowledged_by else ""
                print(f"{al.id} {astana_iso(al.raised_at)} {al.rule} {al.user_id}: "
                      f"{al.summary}{ack}")
            print(f"{len(alerts)} alert(s)")
        else:  # overdue-reviews
            actor = Actor(OFFLINE_ACTOR, Role.CONTROLLER)
            rows = (ops.reports.review_status(actor) if args.all
                    else ops.reports.overdue_reviews(actor))
            for r in rows:
                last = astana_iso(r.last_review_at) if r.last_review_at else "never"
                print(f"{r.controller_id} last review {last}"
                      f"{' OVERDUE' if r.overdue else ''}")
            print(f"{sum(1 for r in rows if r.overdue)} controller(s) overdue")
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    import sys

    # Deferred: each command loads what it needs (gRPC, the database).
    from server.ops import Actor, QueryFilter, audit_log_recorder
    from server.ops_wiring import INDEX_PREFIX, OpsWiring
    from server.store import Store
    from siogw_api.timeutil import parse_iso

    config = _config(args)
    store = Store(config.effective_database_url).open()
    try:
        user = store.get_user(args.as_user)
        if user is None:
            raise ConfigError(f"no user {args.as_user!r} in the gateway database")
        with _offline_audit_log(config, "export through AuditService.ExportQueriesCsv") as log:
            # Deferred: loaded by this command only (`siogw --help` stays light).
            from audit.index import AuditIndex

            index = AuditIndex(store.engine.url.render_as_string(hide_password=False),
                               table_prefix=INDEX_PREFIX)
            index.create()
            ops = _ops_offline(config, store, audit_log_recorder(log), index)
            wiring = OpsWiring(ops=ops, index=index, log_dir=log.root,
                               durable=log.durable_extent)
            try:
                wiring.catch_up()
                flt = QueryFilter(
                    user_ids=tuple(args.user) if args.user else None,
                    since=parse_iso(args.since) if args.since else None,
                    until=parse_iso(args.until) if args.until else None,
                    resource=args.resource, basis=args.basis, task=args.task,
                    outcome=args.outcome, unit=args.unit, subject=args.subject,
                    reason=args.reason)
                actor = Actor(user.user_id, user.role)
                if args.csv in (None, "-"):
                    rows = ops.reports.export_csv(actor, sys.stdout, flt)
                else:
                    try:
                        with open(args.csv, "w", encoding="utf-8", newline="") as out:
                            rows = ops.reports.export_csv(actor, out, flt)
                    except OSError as exc:
                        raise ConfigError(f"cannot write {args.csv}", detail=str(exc)) from exc
                    print(f"{rows} query record(s) written to {args.csv}")
            finally:
                wiring.close()
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
    serve.add_argument(
        "--workers", type=int, default=None,
        help="gateway processes on the port (default: server.workers, 1); see ADR 0007",
    )
    serve.add_argument(
        "--log-format", choices=("text", "json"), default=None,
        help="log lines as text or one JSON object per line (default: logging.format)",
    )
    serve.set_defaults(func=_serve)

    admin = subparsers.add_parser(
        "admin",
        help="bootstrap: enrol the first operator (with the gateway stopped)",
        description="Bootstrap administration directly on the database: enrol the first "
        "operator, with the gateway stopped (the audit log must be free). Everything else, "
        "on a running gateway, is signed on your token with `siogw client NOUN VERB`: "
        "`siogw client users enroll|block|unblock|list|show`, `siogw client certs ...`, "
        "`siogw client maintenance ...` (see `siogw client --help`).",
    )
    admin.add_argument("--home", default=None, help="$SIOGW_HOME (default: env or ./var)")
    sub = admin.add_subparsers(dest="admin_command", metavar="OPERATION")
    sub.required = True

    p = sub.add_parser("enroll-user", help="register a user (and certificate, device key)")
    p.add_argument("--user-id", required=True)
    p.add_argument("--full-name", required=True)
    p.add_argument("--role", required=True,
                   help="agency_user, operator, controller, prosecutor, security_officer, "
                        "compliance_officer")
    p.add_argument("--unit", default="")
    p.add_argument("--post", default="")
    p.add_argument("--phone", default="", help="for SMS codes, e.g. +77011234567")
    p.add_argument("--cert", help="the user's token certificate (PEM or DER)")
    p.add_argument("--device-key", help="biometric device public key (PEM or DER SPKI)")
    p.add_argument("--provider-bin", default="",
                   help="compliance_officer: the provider's BIN (FM-1 reporting)")

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

    p = sub.add_parser("applications", help="access applications and their deadlines")
    p.add_argument("--status", choices=("pending", "registered", "refused"), default=None)
    p.add_argument("--overdue", action="store_true", help="only pending ones past the deadline")
    p.set_defaults(func=_ops_view)

    p = sub.add_parser("alerts", help="violation alerts raised by the rules")
    p.add_argument("--open", action="store_true", help="only unacknowledged ones")
    p.add_argument("--user", default=None, help="only alerts about this user")
    p.set_defaults(func=_ops_view)

    p = sub.add_parser("overdue-reviews", help="controllers overdue for their monthly review")
    p.add_argument("--all", action="store_true", help="every controller with their status")
    p.set_defaults(func=_ops_view)

    p = sub.add_parser("report", help="export agency users' queries as CSV (recorded)")
    p.add_argument("--as", dest="as_user", required=True,
                   help="the departmental controller reading the report")
    p.add_argument("--user", action="append", help="only this user (repeatable)")
    p.add_argument("--since", help="ISO 8601 with offset (inclusive)")
    p.add_argument("--until", help="ISO 8601 with offset (exclusive)")
    p.add_argument("--resource", default=None)
    p.add_argument("--basis", default=None)
    p.add_argument("--task", default=None)
    p.add_argument("--outcome", default=None, help="success or refused")
    p.add_argument("--unit", default=None, help="the user's unit")
    p.add_argument("--subject", default=None, help="the IIN/BIN or identifier asked about")
    p.add_argument("--reason", default=None, help="refusal reason, e.g. BASIS_NOT_ALLOWED")
    p.add_argument("--csv", default=None, help="output file (default: standard output)")
    p.set_defaults(func=_report)
