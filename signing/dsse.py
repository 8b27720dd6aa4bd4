"""DSSE v1 envelopes (secure-systems-lab ``signing-spec``, ``envelope.md`` / ``protocol.md``).

An envelope carries a payload, its type and one or more signatures. Signatures are over
the *pre-authentication encoding* (PAE) of type and payload, never over the payload
alone, so a signature cannot be replayed under another payload type::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

where ``LEN`` is the ASCII decimal byte length without leading zeros and ``SP`` is one
space (0x20).

The JSON form follows the spec: ``payload`` and ``sig`` are standard base64 (with
padding; URL-safe input is accepted on decode, as the spec asks), ``payloadType`` is a
string and ``signatures`` a non-empty list of ``{"keyid", "sig"}``. sio-gateway adds
optional extension fields per signature: ``cert``, the signer's X.509 certificate in PEM,
so that a verifier needs only the trust anchors; and ``batch`` (results only), which makes
``sig`` a signature over a batch of envelopes' Merkle root (:mod:`signing.batch`,
ADR 0011): ``{"statement": b64, "index": int, "path": [b64, ...]}``. Unknown fields are
ignored, as the spec requires.

Embedded certificates are parsed (and rendered as PEM) once per distinct certificate, in
two caches bounded in bytes, not entries (:class:`signing.bytecache.ByteBoundedCache`:
1 MiB each, nothing over 16 KiB of DER kept), so that no stream of distinct
certificates can pin memory.

This module does no I/O. Verification is delegated to an :class:`SignatureVerifier`
(``signing.trust.CertificateVerifier`` for certificates chained to the trust store,
``signing.trust.PublicKeyVerifier`` for bare keys).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing import batch as _batch
from signing.api import PublicKey, Signer, certificate_der, key_id_for
from signing.bytecache import ByteBoundedCache
from signing.errors import BadSignature, MalformedEnvelope, UnknownSigner
from siogw_api.errors import InputError, TrustError

# --- payload types -----------------------------------------------------------------------
PAYLOAD_QUERY = "application/vnd.siogw.query+protobuf"
PAYLOAD_RESULT = "application/vnd.siogw.result+protobuf"
PAYLOAD_CONSENT = "application/vnd.siogw.consent+json"
PAYLOAD_LOGIN_CHALLENGE = "application/vnd.siogw.login-challenge"
PAYLOAD_ADMIN = "application/vnd.siogw.admin+protobuf"
PAYLOAD_REFUSAL = "application/vnd.siogw.refusal+json"
#: An FM-1 message signed on a compliance officer's token (issue 16).
PAYLOAD_FM1 = "application/vnd.siogw.fm1+json"
#: The gateway's signed acknowledgement of an accepted FM-1 message.
PAYLOAD_FM1_RECEIPT = "application/vnd.siogw.fm1-receipt+json"
#: A version of the List or a List, published by the agency (issue 16, point 6).
PAYLOAD_LIST_PUBLICATION = "application/vnd.siogw.list-publication+protobuf"

PAYLOAD_TYPES: frozenset[str] = frozenset(
    {
        PAYLOAD_QUERY,
        PAYLOAD_RESULT,
        PAYLOAD_CONSENT,
        PAYLOAD_LOGIN_CHALLENGE,
        PAYLOAD_ADMIN,
        PAYLOAD_REFUSAL,
        PAYLOAD_LIST_PUBLICATION,
    }
)

#: Largest JSON envelope :func:`decode_envelope` accepts, in bytes (4 MiB).
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
#: Most signatures one envelope may carry.
MAX_SIGNATURES = 16
#: Longest payload type accepted.
MAX_PAYLOAD_TYPE_LEN = 256
#: Longest key id accepted (a hex SHA-256 is 64 characters).
MAX_KEYID_LEN = 128
#: Largest signature accepted, in bytes (RSA-16384 is 2048 bytes).
MAX_SIG_BYTES = 2048
#: Largest embedded certificate accepted, in DER bytes.
MAX_CERT_DER_BYTES = 16 * 1024
#: The payload types a batch signature (the ``batch`` extension) may cover: the gateway's
#: results only. Anything else carrying one is malformed.
BATCHABLE_TYPES: frozenset[str] = frozenset({PAYLOAD_RESULT})


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class EnvSig:
    """One signature of an envelope.

    ``keyid`` is the signer's key id (hex SHA-256 of its SubjectPublicKeyInfo, see
    :func:`signing.api.key_id_for`) or empty; ``cert_der`` is the optional certificate
    extension field, held as DER.
    """

    keyid: str
    sig: bytes
    cert_der: bytes | None = None
    #: Present when ``sig`` signs a batch's root statement, not this envelope's PAE.
    batch: _batch.BatchProof | None = None

    @property
    def certificate(self) -> x509.Certificate | None:
        """The embedded certificate, parsed; :class:`MalformedEnvelope` if unparsable."""
        if self.cert_der is None:
            return None
        try:
            return _load_certificate(self.cert_der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise MalformedEnvelope(
                "signature carries an unparsable certificate", detail=str(exc)
            ) from exc


#: Parsed embedded certificates by DER. Each entry is charged twice its DER (the key,
#: and the parsed object, which holds its own copy of the DER). 1 MiB in all; a
#: certificate over 16 KiB of DER is parsed each time and never kept.
CERTIFICATE_CACHE = ByteBoundedCache(max_bytes=1024 * 1024, max_der_bytes=16 * 1024)
#: PEM text of embedded certificates by DER: charged DER + PEM length; 1 MiB in all.
PEM_CACHE = ByteBoundedCache(max_bytes=1024 * 1024, max_der_bytes=16 * 1024)


def _load_certificate(der: bytes) -> x509.Certificate:
    """Parse an embedded certificate; the same signer's certificate is parsed once
    (:data:`CERTIFICATE_CACHE`). A parse failure raises and is not remembered."""
    cert = CERTIFICATE_CACHE.get(der)
    if cert is None:
        cert = x509.load_der_x509_certificate(der)
        CERTIFICATE_CACHE.put(der, cert, cost=2 * len(der), der_bytes=len(der))
    return cert


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: payload type, payload bytes and one or more signatures."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvSig, ...] = field(default_factory=tuple)

    def pae(self) -> bytes:
        """The bytes every signature of this envelope signs."""
        return pae(self.payload_type, self.payload)

    def to_json(self) -> bytes:
        """Encode as DSSE JSON (UTF-8, compact, keys in spec order)."""
        return encode_envelope(self)

    @classmethod
    def from_json(cls, data: bytes | str, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
        """Decode DSSE JSON strictly; see :func:`decode_envelope`."""
        return decode_envelope(data, max_bytes=max_bytes)

    def to_proto_fields(self) -> dict[str, Any]:
        """Plain values for ``siogw.v1.Envelope``.

        Returns ``{"payload_type": str, "payload": bytes, "signatures": [{"keyid": str,
        "sig": bytes, "cert_der": bytes}]}`` (``cert_der`` is ``b""`` when absent, as
        proto3 has no null bytes field), ready for ``Envelope(**fields)`` after wrapping
        each signature dict in the generated ``Signature`` message.
        """
        return {
            "payload_type": self.payload_type,
            "payload": self.payload,
            "signatures": [_sig_fields(s) for s in self.signatures],
        }

    @classmethod
    def from_proto_fields(
        cls,
        payload_type: str,
        payload: bytes,
        signatures: Iterable[Mapping[str, Any] | Any],
    ) -> Envelope:
        """Build from plain values or a generated message's fields, validating as decode does.

        ``signatures`` items may be mappings with ``keyid``/``sig``/``cert_der`` keys or
        any object with those attributes (a generated ``Signature`` message).
        """
        sigs: list[EnvSig] = []
        for i, item in enumerate(signatures):
            if i >= MAX_SIGNATURES:
                raise MalformedEnvelope(f"more than {MAX_SIGNATURES} signatures")
            if isinstance(item, Mapping):
                keyid, sig, cert = item.get("keyid", ""), item.get("sig"), item.get("cert_der")
                proof = item.get("batch")
            else:
                keyid = getattr(item, "keyid", "")
                sig = getattr(item, "sig", None)
                cert = getattr(item, "cert_der", None)
                has = getattr(item, "HasField", None)
                proof = item.batch if has is not None and has("batch") else None
            if not isinstance(keyid, str):
                raise MalformedEnvelope(f"signatures[{i}].keyid is not a string")
            if not isinstance(sig, bytes | bytearray) or not sig:
                raise MalformedEnvelope(f"signatures[{i}].sig is missing or empty")
            if cert is not None and not isinstance(cert, bytes | bytearray):
                raise MalformedEnvelope(f"signatures[{i}].cert_der is not bytes")
            _check_sizes(i, keyid, sig, cert)
            sigs.append(EnvSig(keyid=keyid, sig=bytes(sig), cert_der=bytes(cert) if cert else None,
                               batch=_proof_from_fields(proof, f"signatures[{i}].batch")))
        if not isinstance(payload, bytes | bytearray):
            raise MalformedEnvelope("payload is not bytes")
        return _checked(payload_type, bytes(payload), tuple(sigs))


def _sig_fields(s: EnvSig) -> dict[str, Any]:
    fields: dict[str, Any] = {"keyid": s.keyid, "sig": s.sig, "cert_der": s.cert_der or b""}
    if s.batch is not None:
        fields["batch"] = {
            "statement": s.batch.statement, "index": s.batch.index, "path": list(s.batch.path)
        }
    return fields


def _proof_from_fields(proof: Any, where: str) -> _batch.BatchProof | None:
    """A batch proof from a mapping or a generated ``BatchProof`` message, checked."""
    if proof is None:
        return None
    if isinstance(proof, Mapping):
        statement, index, path = proof.get("statement"), proof.get("index"), proof.get("path")
    else:
        statement = getattr(proof, "statement", None)
        index = getattr(proof, "index", None)
        path = getattr(proof, "path", None)
    if path is None or isinstance(path, bytes | str) or not hasattr(path, "__len__"):
        raise MalformedEnvelope(f"{where}.path is not a list of hashes")
    if len(path) > _batch.MAX_PATH_LENGTH:
        raise MalformedEnvelope(
            f"{where}.path has {len(path)} hashes, over the limit of {_batch.MAX_PATH_LENGTH}"
        )
    return _batch.check_proof_shape(
        _batch.BatchProof(statement, index, tuple(path)), where  # type: ignore[arg-type]
    )


def _check_sizes(
    i: int, keyid: str, sig: bytes | bytearray, cert_der: bytes | bytearray | None
) -> None:
    """The per-signature caps (:data:`MAX_KEYID_LEN`, :data:`MAX_SIG_BYTES`,
    :data:`MAX_CERT_DER_BYTES`); the message names the size, never echoes the value."""
    if len(keyid) > MAX_KEYID_LEN:
        raise MalformedEnvelope(
            f"signatures[{i}].keyid is {len(keyid)} characters, over the limit of "
            f"{MAX_KEYID_LEN}"
        )
    if len(sig) > MAX_SIG_BYTES:
        raise MalformedEnvelope(
            f"signatures[{i}].sig is {len(sig)} bytes, over the limit of {MAX_SIG_BYTES}"
        )
    if cert_der is not None and len(cert_der) > MAX_CERT_DER_BYTES:
        raise MalformedEnvelope(
            f"signatures[{i}] carries a {len(cert_der)}-byte certificate, over the limit "
            f"of {MAX_CERT_DER_BYTES}"
        )


def _checked(payload_type: Any, payload: bytes, signatures: tuple[EnvSig, ...]) -> Envelope:
    if not isinstance(payload_type, str) or not payload_type:
        raise MalformedEnvelope("payloadType is missing or empty")
    if len(payload_type) > MAX_PAYLOAD_TYPE_LEN:
        raise MalformedEnvelope(f"payloadType longer than {MAX_PAYLOAD_TYPE_LEN} characters")
    if not signatures:
        raise MalformedEnvelope("envelope has no signatures")
    return Envelope(payload_type=payload_type, payload=payload, signatures=signatures)


# --- signing -----------------------------------------------------------------------------
def sign_envelope(
    payload_type: str,
    payload: bytes,
    signers: Sequence[Signer] | Signer,
    *,
    include_certificates: bool = True,
) -> Envelope:
    """Sign ``payload`` under ``payload_type`` with each signer (at least one).

    When a signer knows its certificate and ``include_certificates`` is true, the
    certificate is embedded in the signature's ``cert`` extension field.
    """
    if isinstance(signers, Signer):
        signers = [signers]
    if not signers:
        raise MalformedEnvelope("sign_envelope needs at least one signer")
    if not isinstance(payload_type, str) or not payload_type:
        raise MalformedEnvelope("payloadType is missing or empty")
    message = pae(payload_type, payload)
    sigs = []
    for signer in signers:
        cert = signer.certificate if include_certificates else None
        cert_der = certificate_der(cert) if cert is not None else None
        sigs.append(EnvSig(keyid=signer.key_id, sig=signer.sign(message), cert_der=cert_der))
    return _checked(payload_type, payload, tuple(sigs))


def sign_batch(
    items: Sequence[tuple[str, bytes]],
    signer: Signer,
    *,
    at: str,
    include_certificates: bool = True,
) -> list[Envelope]:
    """Sign every ``(payload_type, payload)`` of ``items`` with one signature of
    ``signer`` over their Merkle root (:mod:`signing.batch`); ``at`` is the statement's
    time (ISO 8601). Returns one envelope per item, in order, each carrying the signature,
    the statement, its leaf index and inclusion path. Only :data:`BATCHABLE_TYPES`."""
    if not items:
        raise MalformedEnvelope("sign_batch needs at least one payload")
    for payload_type, _payload in items:
        if payload_type not in BATCHABLE_TYPES:
            raise MalformedEnvelope(f"payloadType {payload_type!r} cannot be batch-signed")
    paes = [pae(t, p) for t, p in items]
    root, paths = _batch.build_tree(paes)
    statement = _batch.encode_statement(
        _batch.BatchStatement(keyid=signer.key_id, root=root, size=len(items), time=at)
    )
    sig = signer.sign(pae(_batch.PAYLOAD_RESULT_BATCH, statement))
    cert = signer.certificate if include_certificates else None
    cert_der = certificate_der(cert) if cert is not None else None
    return [
        _checked(payload_type, payload, (EnvSig(
            keyid=signer.key_id, sig=sig, cert_der=cert_der,
            batch=_batch.BatchProof(statement=statement, index=i, path=paths[i]),
        ),))
        for i, (payload_type, payload) in enumerate(items)
    ]


# --- JSON --------------------------------------------------------------------------------
def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64d(value: Any, where: str) -> bytes:
    """Decode standard or URL-safe base64 (the spec asks decoders to take both)."""
    if not isinstance(value, str):
        raise MalformedEnvelope(f"{where} is not a base64 string")
    text = value.strip()
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope(f"{where} is not valid base64", detail=str(exc)) from exc


def _pem_of(cert_der: bytes) -> str:
    """PEM text of a DER certificate (cached in :data:`PEM_CACHE`: every query's envelope
    repeats one of a few user certificates, and the audit record keeps the envelope as
    DSSE JSON)."""
    pem = PEM_CACHE.get(cert_der)
    if pem is None:
        cert = _load_certificate(cert_der)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        PEM_CACHE.put(cert_der, pem, cost=len(cert_der) + len(pem), der_bytes=len(cert_der))
    return pem


def encode_envelope(envelope: Envelope) -> bytes:
    """DSSE JSON for ``envelope``; the certificate extension goes in ``cert`` as PEM."""
    sigs: list[dict[str, str]] = []
    for s in envelope.signatures:
        item = {"keyid": s.keyid, "sig": _b64e(s.sig)}
        if s.cert_der is not None:
            s.certificate  # noqa: B018 -- parses it: MalformedEnvelope if it is not one
            item["cert"] = _pem_of(s.cert_der)
        if s.batch is not None:
            item["batch"] = {  # type: ignore[assignment]
                "statement": _b64e(s.batch.statement),
                "index": s.batch.index,
                "path": [_b64e(h) for h in s.batch.path],
            }
        sigs.append(item)
    doc = {
        "payload": _b64e(envelope.payload),
        "payloadType": envelope.payload_type,
        "signatures": sigs,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def decode_envelope(data: bytes | str, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Parse DSSE JSON strictly.

    Raises :class:`MalformedEnvelope` naming the first problem: oversize input, not
    UTF-8 / not JSON, not an object, a missing or mistyped field, bad base64, no
    signatures, too many signatures, an unparsable certificate.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise MalformedEnvelope(f"envelope is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEnvelope("envelope is not UTF-8", detail=str(exc)) from exc
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise MalformedEnvelope(f"envelope has a duplicate {exc.args[0]!r} field") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
        raise MalformedEnvelope("envelope is not JSON", detail=str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise MalformedEnvelope("envelope is not a JSON object")
    for name in ("payload", "payloadType", "signatures"):
        if name not in doc:
            raise MalformedEnvelope(f"envelope has no {name!r} field")
    payload_type = doc["payloadType"]
    if not isinstance(payload_type, str):
        raise MalformedEnvelope("payloadType is not a string")
    payload = _b64d(doc["payload"], "payload")
    raw_sigs = doc["signatures"]
    if not isinstance(raw_sigs, list):
        raise MalformedEnvelope("signatures is not a list")
    if not raw_sigs:
        raise MalformedEnvelope("envelope has no signatures")
    if len(raw_sigs) > MAX_SIGNATURES:
        raise MalformedEnvelope(f"more than {MAX_SIGNATURES} signatures")
    sigs: list[EnvSig] = []
    for i, item in enumerate(raw_sigs):
        if not isinstance(item, dict):
            raise MalformedEnvelope(f"signatures[{i}] is not an object")
        if "sig" not in item:
            raise MalformedEnvelope(f"signatures[{i}] has no 'sig' field")
        keyid = item.get("keyid", "")
        if not isinstance(keyid, str):
            raise MalformedEnvelope(f"signatures[{i}].keyid is not a string")
        sig = _b64d(item["sig"], f"signatures[{i}].sig")
        if not sig:
            raise MalformedEnvelope(f"signatures[{i}].sig is empty")
        cert_der: bytes | None = None
        if item.get("cert") is not None:
            cert_pem = item["cert"]
            if not isinstance(cert_pem, str):
                raise MalformedEnvelope(f"signatures[{i}].cert is not a PEM string")
            try:
                cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
            except (ValueError, UnicodeEncodeError, x509.InvalidVersion) as exc:
                raise MalformedEnvelope(
                    f"signatures[{i}].cert is not a PEM certificate", detail=str(exc)
                ) from exc
            cert_der = cert.public_bytes(serialization.Encoding.DER)
        _check_sizes(i, keyid, sig, cert_der)
        sigs.append(EnvSig(keyid=keyid, sig=sig, cert_der=cert_der,
                           batch=_json_proof(item.get("batch"), f"signatures[{i}].batch")))
    return _checked(payload_type, payload, tuple(sigs))


def _json_proof(value: Any, where: str) -> _batch.BatchProof | None:
    """The ``batch`` extension of a JSON signature, decoded and bounded."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedEnvelope(f"{where} is not an object")
    path = value.get("path")
    if not isinstance(path, list):
        raise MalformedEnvelope(f"{where}.path is not a list")
    if len(path) > _batch.MAX_PATH_LENGTH:
        raise MalformedEnvelope(
            f"{where}.path has {len(path)} hashes, over the limit of {_batch.MAX_PATH_LENGTH}"
        )
    statement = _b64d(value.get("statement"), f"{where}.statement")
    hashes = tuple(_b64d(h, f"{where}.path[{j}]") for j, h in enumerate(path))
    return _batch.check_proof_shape(
        _batch.BatchProof(statement, value.get("index"), hashes), where  # type: ignore[arg-type]
    )


# --- verification ------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedSigner:
    """A signature that verified: whose key, and the certificate path when there is one."""

    keyid: str
    public_key: PublicKey
    certificate: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def subject(self) -> str:
        """The certificate subject (RFC 4514), or ``keyid:<hex>`` for a bare key."""
        if self.certificate is not None:
            return self.certificate.subject.rfc4514_string()
        return f"keyid:{self.keyid}"


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose signatures met the threshold. Only read the payload from here."""

    payload_type: str
    payload: bytes
    signers: tuple[VerifiedSigner, ...]


class SignatureVerifier(Protocol):
    """Resolves a signature's key (by key id / embedded certificate) and checks it.

    Returns the :class:`VerifiedSigner` or raises a :class:`siogw_api.errors.TrustError`
    (:class:`UnknownSigner` when no key matches, :class:`BadSignature`, chain errors...).
    """

    def verify_signature(self, signature: EnvSig, message: bytes) -> VerifiedSigner: ...


def _signed_message(envelope: Envelope, signature: EnvSig, message: bytes) -> bytes:
    """The bytes ``signature`` signs: the envelope's PAE, or for a batch signature the
    batch statement's PAE once the proof has placed this envelope under its root
    (:func:`signing.batch.statement_for`; a wrong leaf, path or root is
    :class:`BadSignature`)."""
    if signature.batch is None:
        return message
    if envelope.payload_type not in BATCHABLE_TYPES:
        raise MalformedEnvelope(
            f"payloadType {envelope.payload_type!r} cannot carry a batch signature"
        )
    _batch.statement_for(signature.batch, message, signature.keyid)
    return pae(_batch.PAYLOAD_RESULT_BATCH, signature.batch.statement)


def verify_envelope(
    envelope: Envelope,
    verifier: SignatureVerifier,
    *,
    threshold: int = 1,
    payload_types: Iterable[str] | None = None,
) -> VerifiedEnvelope:
    """Verify ``envelope``: every signature must verify, by at least ``threshold``
    distinct keys.

    ``payload_types``, when given, is the set of types the caller accepts; anything else
    is :class:`MalformedEnvelope` before any signature is checked. A signature that does
    not verify refuses the whole envelope, even when others do (an envelope is kept whole
    in the audit record, so nothing unverified may ride along with a good signature).
    The most informative error is raised: the first one that is not
    :class:`UnknownSigner` (a revoked or expired signer says more than an unknown one).
    """
    if threshold < 1:
        raise InputError(f"signature threshold must be at least 1, not {threshold}")
    if payload_types is not None and envelope.payload_type not in set(payload_types):
        raise MalformedEnvelope(f"unexpected payloadType {envelope.payload_type!r}")
    if not envelope.signatures:
        raise MalformedEnvelope("envelope has no signatures")
    message = envelope.pae()
    verified: dict[str, VerifiedSigner] = {}
    errors: list[TrustError] = []
    for signature in envelope.signatures:
        try:
            signer = verifier.verify_signature(
                signature, _signed_message(envelope, signature, message)
            )
        except TrustError as exc:
            errors.append(exc)
            continue
        verified.setdefault(key_id_for(signer.public_key), signer)
    if not errors and len(verified) >= threshold:
        return VerifiedEnvelope(
            payload_type=envelope.payload_type,
            payload=envelope.payload,
            signers=tuple(verified.values()),
        )
    for err in errors:
        if not isinstance(err, UnknownSigner):
            raise err
    if errors:
        raise errors[0]
    raise BadSignature(
        f"{len(verified)} valid signature(s) from distinct keys, {threshold} required"
    )
