"""AdminService.Execute: signed administrative commands (R3, R4, R8, R10, R13).

The request is a DSSE envelope (``application/vnd.siogw.admin+protobuf``) over an
``AdminCommand``, signed by the session's certificate, from a session whose user has a
role allowed for the command (:data:`COMMAND_ROLES`). The command's ``request_id`` is
claimed like a query's (replay -> ``ALREADY_EXISTS``) and ``created_at`` must be within
the clock-skew window. Every executed command is recorded (``event="admin"``) with the
signed envelope; refusals are recorded by the interceptor.

Effects are immediate: blocking a user or revoking a certificate ends live sessions at
once (the next call of that session fails), a published maintenance window updates
health right away.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from cryptography import x509
from google.protobuf.message import DecodeError
from grpc import aio

from audit.record import AuditRecord
from server.auth import Gateway, check_fresh, der, envelope_json
from server.errors import MissingField, NotPermitted
from server.gen.siogw.v1 import admin_pb2, admin_pb2_grpc
from server.interceptors import current_call
from server.resources.catalogue import Role
from server.store import USER_ACTIVE, USER_BLOCKED, Store
from signing import dsse
from signing.api import key_id_for
from siogw.errors import InputError
from siogw.timeutil import astana_iso, parse_iso

#: Which roles may run which command.
COMMAND_ROLES: Mapping[str, frozenset[str]] = {
    "enroll_user": frozenset({Role.OPERATOR}),
    "block_user": frozenset({Role.OPERATOR, Role.CONTROLLER, Role.SECURITY_OFFICER}),
    "unblock_user": frozenset({Role.OPERATOR}),
    "revoke_certificate": frozenset({Role.SECURITY_OFFICER, Role.OPERATOR}),
    "register_certificate": frozenset({Role.OPERATOR, Role.SECURITY_OFFICER}),
    "publish_maintenance": frozenset({Role.OPERATOR}),
}


def parse_certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InputError("certificate_der is not a DER X.509 certificate") from exc


def register_certificate(gateway: Gateway | None, store: Store, user_id: str, data: bytes) -> str:
    """Check (when a gateway is given) and register a certificate; returns its fingerprint."""
    cert = parse_certificate(data)
    if gateway is not None:
        gateway.check_certificate(cert)
    row = store.register_certificate(
        user_id, der(cert), serial_hex=format(cert.serial_number, "x"),
        key_id=key_id_for(cert.public_key()),  # type: ignore[arg-type]
    )
    return row.fingerprint


def execute(gateway: Gateway | None, store: Store, command: admin_pb2.AdminCommand) -> str:
    """Apply one command to the store; returns a human-readable result message.

    Shared by the gRPC service and ``siogw admin`` (which passes ``gateway=None`` and so
    skips the chain check of new certificates).
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
            from server.biometric import load_device_key

            load_device_key(bytes(c.device_public_key_der))
        cert = parse_certificate(bytes(c.certificate_der)) if c.certificate_der else None
        if cert is not None and gateway is not None:
            gateway.check_certificate(cert)
        store.add_user(
            user_id=c.user_id, full_name=c.full_name, role=c.role, unit=c.unit, post=c.post,
            phone=c.phone, device_public_key_der=bytes(c.device_public_key_der) or None,
        )
        if cert is not None:
            register_certificate(None, store, c.user_id, der(cert))
        return f"user {c.user_id} enrolled as {c.role}"
    if which == "block_user":
        store.set_user_status(command.block_user.user_id, USER_BLOCKED, command.block_user.reason)
        return f"user {command.block_user.user_id} blocked; live sessions ended"
    if which == "unblock_user":
        u = command.unblock_user
        store.set_user_status(u.user_id, USER_ACTIVE, u.reason)
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
        fp = register_certificate(gateway, store, rc.user_id, bytes(rc.certificate_der))
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
    raise MissingField("the admin command names no operation")


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway, on_maintenance: object = None) -> None:
        self.gw = gateway
        self.on_maintenance = on_maintenance

    async def Execute(
        self, request: admin_pb2.AdminRequest, context: aio.ServicerContext
    ) -> admin_pb2.AdminResponse:
        gw = self.gw
        info = current_call()
        if request.HasField("envelope"):
            info.payload = envelope_json(request.envelope)
        session = await gw.authenticate(context)
        gw.audit.check()
        if not request.HasField("envelope"):
            raise MissingField("the admin envelope is missing")
        payload = gw.verify_by_certificate(
            request.envelope, dsse.PAYLOAD_ADMIN, session.certificate
        )
        command = admin_pb2.AdminCommand()
        try:
            command.ParseFromString(payload)
        except DecodeError as exc:
            raise InputError("the signed payload is not a siogw.v1.AdminCommand") from exc
        which = command.WhichOneof("command") or ""
        info.details.update({"request_id": command.request_id, "command": which})
        if not which:
            raise MissingField("the admin command names no operation")
        if session.user.role not in COMMAND_ROLES.get(which, frozenset()):
            raise NotPermitted(f"role {session.user.role!r} may not run {which}")
        if not command.request_id:
            raise MissingField("request_id is empty")
        check_fresh(command.created_at, gw.config.limits.clock_skew_seconds)
        gw.store.claim_request_id(command.request_id, user_id=session.user_id, kind="admin")
        message = execute(gw, gw.store, command)
        if which == "publish_maintenance" and callable(self.on_maintenance):
            await self.on_maintenance()
        receipt = await gw.record(
            AuditRecord(
                actor=session.user_id,
                event="admin",
                outcome="success",
                cert_fingerprint=session.cert_fingerprint,
                details={"request_id": command.request_id, "command": which,
                         "message": message},
                payload=info.payload,
            )
        )
        return admin_pb2.AdminResponse(message=message, receipt=receipt.to_proto())
