"""Consent to the terms of use (R6): versioned text, signed with the user's token.

The consent envelope (``application/vnd.siogw.consent+json``) carries canonical JSON
``{"sha256", "signed_at", "user_id", "version"}`` where ``sha256`` is the lowercase hex
SHA-256 of the UTF-8 consent text. It must be signed by the session's certificate, name
the session's user and the current version and digest, and ``signed_at`` must be within
the clock-skew window. The envelope (DSSE JSON) is written ahead to the audit log
(:mod:`server.writeahead`: ``event="consent"``, ``outcome="requested"``), then stored with
its date in Astana time, then its outcome is recorded. Until it is stored, every Query is
``FAILED_PRECONDITION``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import json
from typing import Any

from server.config import PolicyConfig
from server.context import Gateway, Session, check_fresh, envelope_bytes
from server.errors import ConsentRequired, MissingField
from server.interceptors import current_call
from server.writeahead import write_ahead
from signing import dsse
from signing.wire import envelope_from_proto
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import auth_pb2, common_pb2


class ConsentMismatch(InputError):
    """The signed consent names another version, digest or user."""

    reason_code = "CONSENT_MISMATCH"


def text_digest(policy: PolicyConfig) -> bytes:
    return hashlib.sha256(policy.consent_text.encode("utf-8")).digest()


def consent_text(policy: PolicyConfig) -> auth_pb2.ConsentText:
    """The current consent text, its version and digest."""
    return auth_pb2.ConsentText(
        version=policy.consent_version, text=policy.consent_text, sha256=text_digest(policy)
    )


def require_consent(gateway: Gateway, session: Session) -> None:
    """:class:`ConsentRequired` unless the user signed the current consent version."""
    version = gateway.config.policy.consent_version
    ctx = session.context  # read with the session in this call, when there is one
    consented = (
        ctx.consented if ctx is not None else gateway.store.has_consent(session.user_id, version)
    )
    if not consented:
        raise ConsentRequired(
            f"sign the consent to the terms of use (version {version}) before querying"
        )


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError("consent payload is not UTF-8 JSON") from exc
    if not isinstance(doc, dict):
        raise InputError("consent payload is not a JSON object")
    for key in ("version", "sha256", "user_id", "signed_at"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise MissingField(f"consent payload has no {key!r}")
    return doc


async def sign_consent(
    gateway: Gateway, session: Session, request: auth_pb2.SignConsentRequest
) -> auth_pb2.SignConsentResponse:
    signed_at, raw = await asyncio.to_thread(_check, gateway, session, request)
    policy = gateway.config.policy
    signed_astana = astana_iso(signed_at)
    details = {"version": policy.consent_version, "signed_at": signed_astana}
    # The write-ahead rule (server.writeahead): the signed consent is durable in the log
    # before it is stored.
    intent = await write_ahead(
        gateway, event="consent", actor=session.user_id,
        cert_fingerprint=session.cert_fingerprint, details=details, payload=raw,
    )
    await asyncio.to_thread(_store, gateway, session, request.consent, signed_at)
    receipt = await intent.done(details)
    return auth_pb2.SignConsentResponse(signed_at=signed_astana, receipt=receipt.to_proto())


def _check(
    gateway: Gateway, session: Session, request: auth_pb2.SignConsentRequest
) -> tuple[_dt.datetime, bytes]:
    """Verify the signed consent (blocking; runs in a worker thread; changes nothing).

    Returns the time of signing and the envelope as recorded.
    """
    if not request.HasField("consent"):
        raise MissingField("consent envelope is missing")
    raw = envelope_bytes(request.consent)
    current_call().payload = raw
    payload = gateway.verify_by_certificate(
        request.consent, dsse.PAYLOAD_CONSENT, session.certificate, validated=session.chain
    )
    doc = _parse(payload)
    policy = gateway.config.policy
    if doc["version"] != policy.consent_version:
        raise ConsentMismatch(
            f"consent version {doc['version']!r} is not the current {policy.consent_version!r}"
        )
    if doc["sha256"].lower() != text_digest(policy).hex():
        raise ConsentMismatch("the signed digest is not that of the current consent text")
    if doc["user_id"] != session.user_id:
        raise ConsentMismatch("the consent names another user")
    signed_at = check_fresh(doc["signed_at"], gateway.config.limits.clock_skew_seconds)
    return signed_at, raw


def _store(
    gateway: Gateway, session: Session, consent: common_pb2.Envelope, signed_at: _dt.datetime
) -> None:
    """Store the verified consent (blocking; runs in a worker thread); the database keeps
    its DSSE JSON (the audit record keeps the envelope's bytes)."""
    policy = gateway.config.policy
    gateway.store.record_consent(
        user_id=session.user_id,
        version=policy.consent_version,
        text_sha256=text_digest(policy).hex(),
        envelope_json=envelope_from_proto(consent).to_json(),
        cert_fingerprint=session.cert_fingerprint,
        signed_at=signed_at,
        signed_at_astana=astana_iso(signed_at),
    )
