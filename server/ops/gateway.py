"""Connecting the operations domain to the gateway's control-plane store.

:func:`connect_store` installs the hooks that mirror each committed operations change
into ``server.store.Store`` (H5), so the gateway's per-call checks see it at once:

=====================  ==================================================================
operations change      gateway store call
=====================  ==================================================================
registration (R3)      ``add_user`` + ``register_certificate`` (the Enrolment's fields)
block (R4, R13)        ``set_user_status(user_id, "blocked", reason)`` -- ends sessions
unblock                ``set_user_status(user_id, "active", reason)``
certificate revoked    ``revoke(serial_hex, reason, issuer=..., at=...)`` -- ends sessions
certificate registered ``register_certificate`` (after a key rotation, R8)
maintenance window     ``add_window`` (queries get "unavailable until ...", R10)
=====================  ==================================================================

:func:`observe_audit_record` turns a gateway ``audit.AuditRecord`` into the dict the rule
engine reads. Nothing here is imported by the other ops modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography import x509

from server.ops.applications import Enrolment
from server.ops.journal import Window
from signing.api import key_id_for

if TYPE_CHECKING:
    from server.ops import Operations


def connect_store(ops: Operations, store: Any) -> None:
    """Install the hooks of the table above on ``ops`` for ``store`` (a ``Store``)."""
    from server.ops import schema
    from server.store import USER_ACTIVE, USER_BLOCKED

    # The session check reads the operations status with the session (one statement).
    store.read_status_from(schema.users)

    def register_cert(user_id: str, der: bytes) -> None:
        cert = x509.load_der_x509_certificate(der)
        store.register_certificate(
            user_id, der, serial_hex=format(cert.serial_number, "x"),
            key_id=key_id_for(cert.public_key()),  # type: ignore[arg-type]
        )

    def enrol(e: Enrolment) -> None:
        if store.get_user(e.user_id) is None:
            store.add_user(user_id=e.user_id, full_name=e.full_name, role=e.role, unit=e.unit,
                           post=e.post, phone=e.phone)
        register_cert(e.user_id, e.certificate_der)

    def block(user_id: str, reason: str) -> None:
        store.set_user_status(user_id, USER_BLOCKED, reason)

    def unblock(user_id: str, reason: str) -> None:
        store.set_user_status(user_id, USER_ACTIVE, reason)

    def revoke(serial_hex: str, issuer: str, reason: str, at: Any) -> None:
        store.revoke(serial_hex, reason, issuer=issuer, at=at)

    def window(w: Window) -> None:
        store.add_window(window_id=w.id, starts_at=w.starts_at, ends_at=w.ends_at,
                         description=w.what)

    ops.applications.on_register.append(enrol)
    ops.lifecycle.on_block.append(block)
    ops.lifecycle.on_unblock.append(unblock)
    ops.certificates.on_revoke.append(revoke)
    ops.certificates.on_register.append(register_cert)
    ops.journal.on_window.append(window)


def observe_audit_record(ops: Operations, record: Any) -> list[Any]:
    """Feed one gateway ``AuditRecord`` (actor, event, outcome, details) to the rules."""
    return list(ops.rules.observe({
        "event_type": str(record.event), "actor": record.actor, "outcome": str(record.outcome),
        "details": dict(record.details),
    }))
