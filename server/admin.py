"""AdminService: signed administrative commands (R3, R4, R8, R10, R13) and the
applicant's side of the access procedure (R3).

The request is a DSSE envelope (``application/vnd.siogw.admin+protobuf``) over an
``AdminCommand``, signed by the session's certificate, from a session whose user has a
role allowed for the command (:data:`COMMAND_ROLES`). The command's ``request_id`` is
claimed like a query's (replay -> ``ALREADY_EXISTS``) and ``created_at`` must be within
the clock-skew window. Every command is written ahead (:mod:`server.writeahead`): the
request record (``event="admin"``, ``outcome="requested"``, the signed envelope) is durable
before the request id is claimed or anything changes, and the outcome record
(``outcome="success"``, ``request_seq``) follows the effect; a refusal after the request
record is recorded by the interceptor and names it by ``request_seq``.

Effects are immediate: blocking a user or revoking a certificate ends live sessions at
once (the next call of that session fails), a published maintenance window updates
health right away.

The operations commands (issue 5: applications, transfers, outbox, alerts, emergencies,
CRLs, certificates, reviews) run the ``server.ops`` services with
``Actor(session.user_id, session role)`` (``Gateway.ops_wiring``, built by
:mod:`server.assembly`; ``UNIMPLEMENTED`` where the gateway has none); their typed result
is in ``AdminResponse.result`` (:mod:`server.admin_results`). Block, unblock, certificate
registration and revocation of users with an operations record (registered from an
application or imported with an IIN: ``LifecycleService.manages``), and every
maintenance window, go through the operations services too (recorded there as ``ops.*``
events); users enrolled by EnrollUser or ``siogw admin`` keep the store's commands.
Both write the same rows (one table per fact, :mod:`server.store`), so ``ListUsers`` and
``ListCertificates`` list every enrolled user and registered certificate.

The applicant RPCs need no session: ``FileApplication`` takes the signed application
(checked, then written ahead as ``event="application"``, then filed);
``GetApplicationStatus`` / ``GetRefusal`` take an :data:`PAYLOAD_APPLICANT_PROOF` envelope
signed with the application's certificate. ``GetJournal`` shows any signed-in user the
maintenance windows and the Journal of emergencies (R10).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from google.protobuf.message import DecodeError
from grpc import aio
from sqlalchemy.engine import Connection

from server import admin_results as R
from server.biometric import load_device_key
from server.context import Gateway, check_fresh, der, envelope_bytes
from server.errors import MissingField, NotPermitted
from server.interceptors import current_call
from server.ops import Action, Actor, BlockKind, Operations
from server.ops.lifecycle import check_status_change
from server.ops.roles import PERMISSIONS
from server.reporting.store import add_provider_officer
from server.resources.catalogue import Role
from server.resources.identifiers import validate_bin
from server.status import window_proto
from server.store import Store
from server.store import schema as cp
from server.store.certificates import fingerprint
from server.store.users import USER_ACTIVE, USER_BLOCKED
from server.writeahead import write_ahead
from signing import documents, dsse
from signing.api import key_id_for
from signing.pin_ages import load_pin_ages
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import admin_pb2, admin_pb2_grpc

log = logging.getLogger("siogw.server")

#: The applicant's proof of holding the application's certificate (an ApplicantProof).
PAYLOAD_APPLICANT_PROOF = documents.PAYLOAD_APPLICANT_PROOF

#: Operations commands -> the ``server.ops`` action they perform (None: any signed-in user;
#: a transfer edit must be signed by the user it names, which the service checks).
OPS_COMMAND_ACTIONS: Mapping[str, Action | None] = {
    "list_applications": Action.APPLICATION_LIST,
    "register_application": Action.APPLICATION_DECIDE,
    "refuse_application": Action.APPLICATION_DECIDE,
    "file_transfer": None,
    "list_transfers": Action.APPLICATION_LIST,
    "apply_transfer": Action.TRANSFER_APPLY,
    "read_outbox": Action.OUTBOX_READ,
    "mark_notice_read": Action.OUTBOX_READ,
    "list_alerts": Action.ALERT_READ,
    "acknowledge_alert": Action.ALERT_ACK,
    "record_emergency": Action.EMERGENCY_RECORD,
    "resolve_emergency": Action.EMERGENCY_RECORD,
    "list_emergencies": Action.EMERGENCY_READ,
    "import_crl": Action.CRL_IMPORT,
    "list_certificates": Action.CERTIFICATE_LIST,
    "record_review": Action.REVIEW_RECORD,
    "list_overdue_reviews": Action.REVIEW_STATUS,
    "list_users": Action.USER_LIST,
}

#: Which roles may run which command.
COMMAND_ROLES: Mapping[str, frozenset[str]] = {
    "enroll_user": frozenset({Role.OPERATOR}),
    "block_user": frozenset({Role.OPERATOR, Role.CONTROLLER, Role.SECURITY_OFFICER}),
    "unblock_user": frozenset({Role.OPERATOR, Role.SECURITY_OFFICER}),
    "revoke_certificate": frozenset({Role.SECURITY_OFFICER, Role.OPERATOR}),
    "register_certificate": frozenset({Role.OPERATOR, Role.SECURITY_OFFICER}),
    "publish_maintenance": frozenset({Role.OPERATOR}),
    "cancel_maintenance": frozenset({Role.OPERATOR}),
    **{
        name: (frozenset(PERMISSIONS[action]) if action is not None else frozenset(Role))
        for name, action in OPS_COMMAND_ACTIONS.items()
    },
}


def _status_guard(
    actor: Actor | None, user_id: str, *, block: bool
) -> Callable[[Connection], object] | None:
    if actor is None:  # siogw admin: the local administrator, no rules of roles
        return None
    return lambda conn: check_status_change(conn, actor, user_id, block=block)


def parse_certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError("certificate_der is not a DER X.509 certificate") from exc


def check_provider_bin(role: str, provider_bin: str) -> str | None:
    """A compliance officer's provider BIN (required, check digit); no other role has one."""
    if role == Role.COMPLIANCE_OFFICER:
        if not provider_bin:
            raise MissingField("a compliance_officer needs provider_bin (the provider's BIN)")
        return validate_bin(provider_bin)
    if provider_bin:
        raise InputError("provider_bin is for the role compliance_officer only")
    return None


def _provider_row(user_id: str, provider_bin: str | None
                  ) -> Callable[[Connection], None] | None:
    if provider_bin is None:
        return None
    return lambda conn: add_provider_officer(conn, user_id, provider_bin)


def register_certificate(
    gateway: Gateway | None, store: Store, user_id: str, data: bytes,
    token_label: str | None = None,
) -> str:
    """Check (when a gateway is given) and register a certificate; returns its fingerprint.
    ``token_label``: the token holding the key (for the PIN-age warnings)."""
    cert = parse_certificate(data)
    if gateway is not None:
        gateway.check_certificate(cert)
    row = store.register_certificate(
        user_id, der(cert), serial_hex=format(cert.serial_number, "x"),
        key_id=key_id_for(cert.public_key()),  # type: ignore[arg-type]
        token_label=token_label,
    )
    return row.fingerprint


def execute(
    gateway: Gateway | None,
    store: Store,
    command: admin_pb2.AdminCommand,
    actor: Actor | None = None,
) -> str:
    """Apply one command to the store; returns a human-readable result message.

    Shared by the gRPC service and ``siogw admin`` (which passes ``gateway=None`` and so
    skips the chain check of new certificates). With an ``actor`` (the gRPC service), a
    block or unblock follows the rules of who may block whom
    (:func:`server.ops.lifecycle.check_status_change`), in the change's transaction.
    """
    which = command.WhichOneof("command")
    if which == "enroll_user":
        c = command.enroll_user
        if not c.user_id or not c.full_name or not c.role:
            raise MissingField("enroll_user needs user_id, full_name and role")
        try:
            Role(c.role)
        except ValueError:
            raise InputError(
                f"unknown role {c.role!r}", detail="one of " + ", ".join(r.value for r in Role)
            ) from None
        if c.device_public_key_der:
            load_device_key(bytes(c.device_public_key_der))
        cert = parse_certificate(bytes(c.certificate_der)) if c.certificate_der else None
        if cert is not None and gateway is not None:
            gateway.check_certificate(cert)
        provider_bin = check_provider_bin(c.role, c.provider_bin)
        # A compliance officer's provider is written in the user's own transaction: an
        # officer without a provider (who could neither report nor screen) cannot exist.
        store.add_user(
            user_id=c.user_id, full_name=c.full_name, role=c.role, unit=c.unit, post=c.post,
            phone=c.phone, device_public_key_der=bytes(c.device_public_key_der) or None,
            also=_provider_row(c.user_id, provider_bin),
        )
        if cert is not None:
            register_certificate(None, store, c.user_id, der(cert))
        return f"user {c.user_id} enrolled as {c.role}"
    if which == "block_user":
        b = command.block_user
        store.set_user_status(b.user_id, USER_BLOCKED, b.reason, guard=_status_guard(
            actor, b.user_id, block=True))
        return f"user {command.block_user.user_id} blocked; live sessions ended"
    if which == "unblock_user":
        u = command.unblock_user
        store.set_user_status(u.user_id, USER_ACTIVE, u.reason, guard=_status_guard(
            actor, u.user_id, block=False))
        return f"user {u.user_id} unblocked"
    if which == "revoke_certificate":
        r = command.revoke_certificate
        if not r.serial_hex:
            raise MissingField("revoke_certificate needs serial_hex")
        revs = store.revoke(r.serial_hex, r.reason or "keyCompromise")
        return (
            f"certificate {revs[0].serial_hex} revoked at {astana_iso(revs[0].revoked_at)}; "
            "its sessions ended"
        )
    if which == "register_certificate":
        rc = command.register_certificate
        fp = register_certificate(gateway, store, rc.user_id, bytes(rc.certificate_der),
                                  token_label=rc.token_label or None)
        return f"certificate {fp[:16]}… registered to {rc.user_id}"
    if which == "publish_maintenance":
        w = command.publish_maintenance.window
        if not w.starts_at or not w.ends_at:
            raise MissingField("a maintenance window needs starts_at and ends_at")
        row = store.add_window(
            window_id=w.id or uuid.uuid4().hex[:12],
            starts_at=parse_iso(w.starts_at),
            ends_at=parse_iso(w.ends_at),
            description=w.description,
        )
        return (
            f"maintenance {row.id} published: {astana_iso(row.starts_at)} .. "
            f"{astana_iso(row.ends_at)}"
        )
    if which == "cancel_maintenance":
        cm = command.cancel_maintenance
        if not cm.window_id:
            raise MissingField("cancel_maintenance needs window_id")
        done = store.cancel_window(cm.window_id, reason=cm.reason,
                                   cancelled_by=actor.user_id if actor else "local")
        return f"maintenance {done.id} cancelled"
    raise MissingField("the admin command names no operation")


def store_result(
    store: Store, command: admin_pb2.AdminCommand, ops: Operations | None = None
) -> Any:
    """The typed result of a command :func:`execute` ran (None when it has none)."""
    which = command.WhichOneof("command")
    if which == "register_certificate" and ops is not None:
        return R.certificate(ops.certificates.get(
            fingerprint(bytes(command.register_certificate.certificate_der))))
    user_id = {"enroll_user": command.enroll_user.user_id,
               "block_user": command.block_user.user_id,
               "unblock_user": command.unblock_user.user_id}.get(which or "")
    if not user_id:
        return None
    row = store.require_user(user_id)
    return admin_pb2.UserEntry(
        user_id=row.user_id, full_name=row.full_name, role=row.role, unit=row.unit,
        post=row.post, phone=row.phone, status=row.status, status_reason=row.status_reason)


# --- operations commands ---------------------------------------------------------------
def _time(text: str, what: str) -> _dt.datetime:
    if not text:
        raise MissingField(f"{what} is empty")
    return parse_iso(text)


def _opt_time(text: str) -> _dt.datetime | None:
    return parse_iso(text) if text else None


def _ops_cert_by_serial(ops: Operations, serial_hex: str) -> str | None:
    """The fingerprint of a registered certificate with this serial whose user has an
    operations record (None: none, or the store's command handles it)."""
    wanted = serial_hex.strip().lower().removeprefix("0x").lstrip("0") or "0"
    c, u = cp.certificates.c, cp.users.c
    with ops.ctx.tx() as conn:
        row = conn.execute(
            sa.select(c.fingerprint).select_from(
                cp.certificates.join(cp.users, u.user_id == c.user_id))
            .where(c.serial_hex == wanted, u.iin != "")
            .order_by(c.registered_at)).first()
    return None if row is None else str(row.fingerprint)


def execute_ops(
    ops: Operations,
    actor: Actor,
    command: admin_pb2.AdminCommand,
    *,
    session_certificate: x509.Certificate | None = None,
    pin_ages_home: Any = None,
) -> tuple[str, Any] | None:
    """Run one command through the operations services (blocking; call off the loop).

    Returns ``(message, result)`` (a result message of :mod:`server.admin_results`), or
    ``None`` when the command is not the operations
    domain's (a user without an operations record; enroll_user): :func:`execute`
    handles those.
    """
    which = command.WhichOneof("command")
    life, apps, certs = ops.lifecycle, ops.applications, ops.certificates
    if which == "block_user":
        c = command.block_user
        if not life.manages(c.user_id):
            return None
        user = life.block(actor, c.user_id, c.kind or BlockKind.SUSPENSION, c.reason)
        return (f"user {c.user_id} blocked ({user.block_kind}); live sessions ended",
                R.user(user))
    if which == "unblock_user":
        u = command.unblock_user
        if not life.manages(u.user_id):
            return None
        user = life.unblock(actor, u.user_id, u.reason)
        return f"user {u.user_id} unblocked", R.user(user)
    if which == "register_certificate":
        rc = command.register_certificate
        if not life.manages(rc.user_id):
            return None
        info = certs.register(actor, rc.user_id, bytes(rc.certificate_der),
                              token_label=rc.token_label or None)
        return (f"certificate {info.fingerprint[:16]}… registered to {rc.user_id}",
                R.certificate(info))
    if which == "revoke_certificate":
        r = command.revoke_certificate
        fp = r.fingerprint or (_ops_cert_by_serial(ops, r.serial_hex) if r.serial_hex else None)
        if fp is None:
            if r.fingerprint or not r.serial_hex:
                raise MissingField("revoke_certificate needs serial_hex or fingerprint")
            return None
        info = certs.revoke(actor, fp, r.reason or "keyCompromise")
        assert info.revoked_at is not None
        return (f"certificate {info.serial_hex} revoked at {astana_iso(info.revoked_at)}; "
                "its sessions ended", R.certificate(info))
    if which == "publish_maintenance":
        w = command.publish_maintenance.window
        window = ops.journal.publish_window(
            actor, _time(w.starts_at, "starts_at"), _time(w.ends_at, "ends_at"),
            w.description or "planned maintenance", window_id=w.id or None,
            urgent=w.urgent)
        return (f"maintenance {window.id} published: {astana_iso(window.starts_at)} .. "
                f"{astana_iso(window.ends_at)}", R.window(window))
    if which == "cancel_maintenance":
        cm = command.cancel_maintenance
        if not cm.window_id:
            raise MissingField("cancel_maintenance needs window_id")
        done = ops.journal.cancel_window(actor, cm.window_id, cm.reason)
        return f"maintenance {done.id} cancelled", R.cancellation(done)
    if which == "list_applications":
        la = command.list_applications
        items = (apps.overdue(actor) if la.overdue_only
                 else apps.applications(actor, status=la.status or None))
        return f"{len(items)} application(s)", R.applications(items, ops.ctx.now())
    if which == "register_application":
        ra = command.register_application
        enrolment = apps.register(actor, ra.application_id, user_id=ra.user_id or None)
        return (f"application {ra.application_id} registered as user {enrolment.user_id}",
                R.enrolment(enrolment))
    if which == "refuse_application":
        if session_certificate is None:
            raise MissingField("a refusal must be signed on the operator's token")
        refusal = apps.refuse_signed(actor, bytes(command.refuse_application.document),
                                     signer_certificates=[session_certificate])
        return f"application {refusal.application_id} refused", R.refusal(refusal)
    if which == "file_transfer":
        edit = life.file_transfer(bytes(command.file_transfer.document))
        late = " (filed late: more than 24 hours after the order)" if edit.late else ""
        return f"transfer edit {edit.id} filed{late}", R.transfer(edit)
    if which == "list_transfers":
        lt = command.list_transfers
        edits = life.transfers(actor, late_only=lt.late_only, pending_only=lt.pending_only,
                               overdue_only=lt.overdue_only)
        overdue = sum(1 for e in edits if e.overdue)
        return f"{len(edits)} transfer edit(s), {overdue} overdue", R.transfers(edits)
    if which == "apply_transfer":
        user = life.apply_transfer(actor, command.apply_transfer.transfer_id)
        return f"transfer edit applied to {user.user_id}", R.user(user)
    if which == "read_outbox":
        notes = life.outbox(actor, unread_only=not command.read_outbox.include_read)
        return f"{len(notes)} notice(s)", R.outbox(notes)
    if which == "mark_notice_read":
        note = life.mark_read(actor, command.mark_notice_read.notification_id)
        return f"notice {note.id} read", R.notice(note)
    if which == "list_alerts":
        la2 = command.list_alerts
        alerts = ops.rules.alerts(actor, open_only=la2.open_only, user_id=la2.user_id or None)
        return f"{len(alerts)} alert(s)", R.alerts(alerts)
    if which == "acknowledge_alert":
        alert = ops.rules.acknowledge(actor, command.acknowledge_alert.alert_id)
        return f"alert {alert.id} acknowledged", R.alert(alert)
    if which == "record_emergency":
        e = command.record_emergency
        item = ops.journal.record_emergency(
            actor, onset_at=_time(e.onset_at, "onset_at"), causes=e.causes,
            measures=e.measures, resolved_at=_opt_time(e.resolved_at))
        return f"emergency {item.id} recorded", R.emergency(item)
    if which == "resolve_emergency":
        re_ = command.resolve_emergency
        item = ops.journal.resolve_emergency(
            actor, re_.emergency_id, resolved_at=_opt_time(re_.resolved_at) or ops.ctx.now(),
            measures=re_.measures or None)
        return f"emergency {item.id} resolved", R.emergency(item)
    if which == "list_emergencies":
        found = ops.journal.emergencies(actor, open_only=command.list_emergencies.open_only)
        return f"{len(found)} emergenc(ies)", R.emergencies(found)
    if which == "import_crl":
        revoked = certs.import_crl(actor, bytes(command.import_crl.crl))
        return (f"CRL imported: {len(revoked)} registered certificate(s) revoked",
                admin_pb2.CrlImportResult(revoked=[R.certificate(c) for c in revoked]))
    if which == "list_certificates":
        pin_ages = load_pin_ages(pin_ages_home) if pin_ages_home is not None else None
        overview = certs.overview(actor, pin_ages=pin_ages,
                                  user_id=command.list_certificates.user_id or None)
        warned = sum(1 for c in overview if c.warnings)
        return (f"{len(overview)} certificate(s), {warned} with warnings",
                R.certificates(overview))
    if which == "record_review":
        rv = command.record_review
        review = ops.reports.record_review(actor, _time(rv.period_start, "period_start"),
                                           _time(rv.period_end, "period_end"), rv.note)
        return f"review {review.id} recorded", R.review(review)
    if which == "list_overdue_reviews":
        statuses = (ops.reports.review_status(actor) if command.list_overdue_reviews.all
                    else ops.reports.overdue_reviews(actor))
        return (f"{sum(1 for r in statuses if r.overdue)} controller(s) overdue",
                R.review_statuses(statuses))
    if which == "list_users":
        users = life.users(actor, role=command.list_users.role or None)
        return f"{len(users)} user(s)", R.users(users)
    return None


def application_status(app: Any) -> admin_pb2.ApplicationStatus:
    return admin_pb2.ApplicationStatus(
        application_id=app.id, status=app.status, received_at=astana_iso(app.received_at),
        deadline_at=astana_iso(app.deadline_at),
        decided_at=astana_iso(app.decided_at) if app.decided_at else "",
        refusal_reason=app.refusal_reason or "", user_id=app.user_id or "",
        corrects=app.corrects or "",
    )



def parse_admin_command(payload: bytes) -> admin_pb2.AdminCommand:
    """The signed payload as an ``AdminCommand``; :class:`InputError` when it is not one."""
    command = admin_pb2.AdminCommand()
    try:
        command.ParseFromString(payload)
    except DecodeError as exc:
        raise InputError("the signed payload is not a siogw.v1.AdminCommand") from exc
    return command

class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway, on_maintenance: object = None) -> None:
        self.gw = gateway
        self.on_maintenance = on_maintenance

    def _ops(self) -> Operations:
        return self.gw.require_ops().ops

    async def Execute(
        self, request: admin_pb2.AdminRequest, context: aio.ServicerContext
    ) -> admin_pb2.AdminResponse:
        gw = self.gw
        info = current_call()
        session = await gw.authenticate(context)
        # Decoded after the session check only: nothing of an unauthenticated caller's
        # envelope is parsed or cached (issue 13, defect 10).
        if request.HasField("envelope"):
            info.payload = envelope_bytes(request.envelope)
        gw.audit.check()
        if not request.HasField("envelope"):
            raise MissingField("the admin envelope is missing")
        payload = gw.verify_by_certificate(
            request.envelope, dsse.PAYLOAD_ADMIN, session.certificate
        )
        command = parse_admin_command(payload)
        which = command.WhichOneof("command") or ""
        info.details.update({"request_id": command.request_id, "command": which})
        if not which:
            raise MissingField("the admin command names no operation")
        if session.user.role not in COMMAND_ROLES.get(which, frozenset()):
            raise NotPermitted(f"role {session.user.role!r} may not run {which}")
        if not command.request_id:
            raise MissingField("request_id is empty")
        check_fresh(command.created_at, gw.config.limits.clock_skew_seconds)
        # The write-ahead rule (server.writeahead): the signed command is durable in the
        # log before its request id is claimed or anything else changes.
        intent = await write_ahead(
            gw, event="admin", actor=session.user_id, cert_fingerprint=session.cert_fingerprint,
            details={"request_id": command.request_id, "command": which},
            payload=info.payload,
        )
        gw.store.claim_request_id(command.request_id, user_id=session.user_id, kind="admin")
        # A refusal from here on names the claim: the replay guard can be restored from
        # the audit log (server.ops_wiring.OpsWiring.restore_replay_guard).
        info.details["request_claimed"] = True
        done: tuple[str, Any] | None = None
        if which != "enroll_user" and (gw.audit_log is not None or which in OPS_COMMAND_ACTIONS):
            ops = self._ops()
            actor = Actor(session.user_id, session.user.role)
            done = await asyncio.to_thread(execute_ops, ops, actor, command,
                                           session_certificate=session.certificate,
                                           pin_ages_home=gw.config.home)
        if done is None:
            actor = Actor(session.user_id, session.user.role)
            message = execute(gw, gw.store, command, actor)
            result = await asyncio.to_thread(
                store_result, gw.store, command,
                gw.ops_wiring.ops if gw.ops_wiring is not None else None)
        else:
            message, result = done
        if which in ("publish_maintenance", "cancel_maintenance") and callable(
                self.on_maintenance):
            await self.on_maintenance()
        receipt = await intent.done(
            {"request_id": command.request_id, "command": which, "message": message}
        )
        return R.respond(message, result, receipt=receipt.to_proto())

    # -- the applicant (R3): no session ------------------------------------------------------
    async def FileApplication(
        self, request: admin_pb2.FileApplicationRequest, context: aio.ServicerContext
    ) -> admin_pb2.ApplicationStatus:
        ops = self._ops()
        document = bytes(request.document)
        if not document:
            raise MissingField("the signed application is missing")
        current_call().payload = document
        # Checked first (nothing changes), so junk costs one refusal record, not two;
        # then written ahead (server.writeahead) and filed.
        fp = await asyncio.to_thread(ops.applications.check, document)
        intent = await write_ahead(self.gw, event="application", actor=f"applicant:{fp[:16]}",
                                   cert_fingerprint=fp, details={}, payload=document)
        app = await asyncio.to_thread(ops.applications.file, document)
        await intent.done({"application_id": app.id})
        return application_status(app)

    async def _applicant(self, request: admin_pb2.ApplicantRequest) -> tuple[str, str]:
        """(application id, certificate fingerprint) of a verified applicant proof."""
        if not request.HasField("proof"):
            raise MissingField("the signed applicant proof is missing")
        info = current_call()
        info.payload = envelope_bytes(request.proof)
        ders = [bytes(sig.cert_der) for sig in request.proof.signatures if sig.cert_der]
        if not ders:
            raise MissingField("the applicant proof carries no certificate (cert_der)")
        cert = parse_certificate(ders[0])
        payload = self.gw.verify_by_certificate(request.proof, PAYLOAD_APPLICANT_PROOF, cert)
        proof = admin_pb2.ApplicantProof()
        try:
            proof.ParseFromString(payload)
        except DecodeError as exc:
            raise InputError("the signed payload is not a siogw.v1.ApplicantProof") from exc
        if not proof.application_id:
            raise MissingField("application_id is empty")
        check_fresh(proof.created_at, self.gw.config.limits.clock_skew_seconds)
        fp = fingerprint(der(cert))
        info.cert_fingerprint = fp
        info.details["application_id"] = proof.application_id
        return proof.application_id, fp

    async def GetApplicationStatus(
        self, request: admin_pb2.ApplicantRequest, context: aio.ServicerContext
    ) -> admin_pb2.ApplicationStatus:
        ops = self._ops()
        app_id, fp = await self._applicant(request)
        app = await asyncio.to_thread(ops.applications.status_for, app_id, fp)
        return application_status(app)

    async def GetRefusal(
        self, request: admin_pb2.ApplicantRequest, context: aio.ServicerContext
    ) -> admin_pb2.RefusalResponse:
        ops = self._ops()
        app_id, fp = await self._applicant(request)
        document = await asyncio.to_thread(ops.applications.refusal_for, app_id, fp)
        return admin_pb2.RefusalResponse(document=document)

    # -- R10: what clients see -------------------------------------------------------------
    async def GetJournal(
        self, request: admin_pb2.GetJournalRequest, context: aio.ServicerContext
    ) -> admin_pb2.Journal:
        await self.gw.authenticate(context)
        ops = self._ops()
        now = now_utc()
        windows = self.gw.store.windows(not_ended_before=now)
        items = await asyncio.to_thread(ops.journal.public_emergencies,
                                        not_resolved_before=now - JOURNAL_HORIZON)
        return admin_pb2.Journal(
            windows=[window_proto(w) for w in windows],
            emergencies=[admin_pb2.Emergency(
                id=e.id, onset_at=astana_iso(e.onset_at), causes=e.causes, measures=e.measures,
                resolved_at=astana_iso(e.resolved_at) if e.resolved_at else "")
                for e in items],
        )


#: How long a resolved emergency stays in the journal clients see.
JOURNAL_HORIZON = _dt.timedelta(days=30)
