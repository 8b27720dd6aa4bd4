"""Signed documents of the operations domain: DSSE envelopes over JSON payloads.

Applications, transfer edits and resolutions are signed by people on their tokens; a
refusal is signed by the operator. All are DSSE JSON envelopes (``signing.dsse``) whose
signatures carry the signer's certificate; verification chains that certificate to the
gateway's trust store (``signing.trust.CertificateVerifier``) at the time of receipt.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.ops.base import parse_json_object
from server.ops.errors import InvalidDocument, SignerMismatch
from signing.documents import (  # the one source: the client library signs them too
    PAYLOAD_APPLICATION,
    PAYLOAD_REFUSAL,
    PAYLOAD_RESOLUTION,
    PAYLOAD_TRANSFER,
    sign_document,
)
from signing.dsse import decode_envelope, verify_envelope
from signing.errors import MalformedEnvelope
from signing.trust import CertificateVerifier, TrustChecker

__all__ = [
    "PAYLOAD_APPLICATION", "PAYLOAD_REFUSAL", "PAYLOAD_RESOLUTION", "PAYLOAD_TRANSFER",
    "der_of", "fingerprint", "parse_certificate", "peek_payload", "sign_document",
    "verify_document",
]


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(der: bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER (as ``server.store.fingerprint``)."""
    return hashlib.sha256(der).hexdigest()


def parse_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InvalidDocument("not a DER X.509 certificate", detail=str(exc)[:200]) from None


def verify_document(
    data: bytes,
    payload_type: str,
    trust: TrustChecker,
    *,
    certificates: Iterable[x509.Certificate] = (),
    at: _dt.datetime | None = None,
) -> tuple[dict[str, Any], x509.Certificate]:
    """Verify a signed document; return its JSON payload and the signer's certificate.

    Raises :class:`~signing.errors.MalformedEnvelope` (or another ``TrustError``) when
    the envelope is malformed, of another type, badly signed or by an untrusted,
    expired or revoked certificate; :class:`InvalidDocument` when the payload is not
    a JSON object.
    """
    envelope = decode_envelope(data)
    if envelope.payload_type != payload_type:
        raise MalformedEnvelope(
            f"expected a {payload_type} document, got {envelope.payload_type!r}"
        )
    verified = verify_envelope(
        envelope, CertificateVerifier(trust, certificates, at=at), payload_types=[payload_type]
    )
    cert = verified.signers[0].certificate
    if cert is None:  # CertificateVerifier always returns one; keep mypy and readers sure
        raise SignerMismatch("the document's signer has no certificate")
    return parse_json_object(verified.payload, "the signed document"), cert


def peek_payload(data: bytes) -> dict[str, Any]:
    """The payload of an envelope, UNVERIFIED (to find which certificate to expect)."""
    try:
        return parse_json_object(decode_envelope(data).payload, "the signed document")
    except (MalformedEnvelope, InvalidDocument):
        return {}
