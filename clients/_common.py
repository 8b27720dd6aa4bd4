"""The client's pure helpers: typed results, message building, envelopes, verification.

Nothing here does network I/O; the plans of :mod:`clients._core` build on these helpers
and :mod:`clients.sync` / :mod:`clients.aio` execute the plans on their channels.

Result verification follows one order: the envelope must be well formed and of the
result type, signed by the pinned gateway key, and bound to the request that was sent
(same request id, SHA-256 of the sent payload) before its payload is parsed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from google.rpc import error_details_pb2, status_pb2

from clients.errors import ClientError, ClientUsageError, ResultVerificationError
from signing import documents, dsse
from signing.api import PublicKey, Signer, key_id_for
from signing.errors import CertificateExpired, UnknownSigner
from signing.merkle import verify_inclusion
from signing.note import TrustedKey, audit_key_statement, open_checkpoint
from signing.note import default_algorithm as audit_algorithm
from signing.verify import verify_with_key
from signing.wire import envelope_from_proto, envelope_to_proto
from siogw_api.errors import ConfigError, TrustError
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, audit_pb2, auth_pb2, common_pb2, query_pb2


# --- typed results -----------------------------------------------------------------------
@dataclass(frozen=True)
class Receipt:
    """Where the gateway logged an event: sequence number and leaf in the audit tree."""

    seq: int
    leaf_hash: bytes
    tree_size: int

    @classmethod
    def from_proto(cls, msg: common_pb2.AuditReceipt) -> Receipt:
        return cls(seq=msg.seq, leaf_hash=bytes(msg.leaf_hash), tree_size=msg.tree_size)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_hash": self.leaf_hash.hex(), "tree_size": self.tree_size}


@dataclass(frozen=True)
class LoginResult:
    """A completed multi-factor login."""

    user_id: str
    session_token: str
    expires_at: str
    consent_required: bool
    consent_version: str
    factor: str
    receipt: Receipt | None
    #: The token's last PIN change as reported (Astana time; "" if not reported) and the
    #: gateway's warning when it is older than 30 days or unknown (§12; "" if none).
    pin_changed_at: str = ""
    pin_warning: str = ""


@dataclass(frozen=True)
class Consent:
    """The terms of use the user must sign (R6)."""

    version: str
    text: str
    sha256: bytes


@dataclass(frozen=True)
class ConsentSigned:
    signed_at: str
    receipt: Receipt | None


@dataclass(frozen=True)
class ResourceInfo:
    """One catalogue entry (Appendix 2)."""

    number: int
    name: str
    access_right: str
    parameters: tuple[str, ...]


@dataclass(frozen=True)
class MaintenanceInfo:
    id: str
    starts_at: str
    ends_at: str
    description: str

    @classmethod
    def from_proto(cls, msg: common_pb2.MaintenanceWindow) -> MaintenanceInfo:
        return cls(
            id=msg.id, starts_at=msg.starts_at, ends_at=msg.ends_at, description=msg.description
        )


@dataclass(frozen=True)
class ServiceStatusInfo:
    """Whether the gateway serves queries now, and the published maintenance windows (R10)."""

    serving: bool
    now: str
    reason: str
    current: MaintenanceInfo | None
    windows: tuple[MaintenanceInfo, ...]


@dataclass(frozen=True)
class AuditKeyInfo:
    """The audit key that signs checkpoints, endorsed by the gateway's result key."""

    origin: str
    public_key_der: bytes
    signer_key_id: str
    signature: bytes


@dataclass(frozen=True)
class CheckpointInfo:
    """The audit log's latest signed checkpoint, as the gateway serves it."""

    signed_checkpoint: bytes
    tree_size: int
    root_hash: bytes
    key_id: str
    audit_key: AuditKeyInfo | None = None


@dataclass(frozen=True)
class InclusionProofInfo:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyProofInfo:
    first: int
    second: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class QueryOutcome:
    """A verified answer to a signed query.

    ``data`` is the result data as a dict; ``result_envelope`` is the gateway-signed
    envelope exactly as received (export it with :meth:`signing.dsse.Envelope.to_json`
    to keep a verifiable copy; ``siogw verify`` checks it).
    """

    request_id: str
    resource: int
    resource_name: str
    access_right: str
    truncated: bool
    data: dict[str, Any]
    produced_at: str
    receipt: Receipt | None
    result_envelope: dsse.Envelope
    gateway_key_id: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (without the envelope bytes)."""
        return {
            "request_id": self.request_id,
            "resource": self.resource,
            "resource_name": self.resource_name,
            "access_right": self.access_right,
            "truncated": self.truncated,
            "produced_at": self.produced_at,
            "data": self.data,
            "receipt": self.receipt.as_dict() if self.receipt else None,
            "gateway_key_id": self.gateway_key_id,
        }


@dataclass(frozen=True)
class AdminOutcome:
    """An admin command's answer: the gateway's one-line ``message``, the audit
    ``receipt`` of its record, and its typed ``result`` -- the message set in
    ``AdminResponse.result`` (``UserList``, ``CertificateList``, ...), or None."""

    message: str
    receipt: Receipt | None
    result: ProtoMessage | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "receipt": self.receipt.as_dict() if self.receipt else None,
            "result": message_dict(self.result) if self.result is not None else None,
        }


@dataclass(frozen=True)
class RefusalDocument:
    """A refusal of an application as the operator signed it (DSSE JSON, verify it with
    ``siogw verify``) and its payload (read, not verified here)."""

    document: bytes
    payload: dict[str, Any]


@dataclass(frozen=True)
class PreparedQuery:
    """A signed query ready to send: the envelope and the facts needed to check the answer."""

    query: query_pb2.Query
    envelope: dsse.Envelope
    payload_digest: bytes = field(repr=False)

    @property
    def request_id(self) -> str:
        return self.query.request_id

    def request(self) -> query_pb2.QueryRequest:
        return query_pb2.QueryRequest(envelope=envelope_to_proto(self.envelope))


def message_dict(msg: ProtoMessage) -> dict[str, Any]:
    """A result message as plain Python: every field by its proto name, unset ones as their
    default ("" / 0 / False / []), 64-bit integers as ints (not JSON's strings)."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None:
            if fd.is_repeated:
                out[fd.name] = [message_dict(v) for v in value]
            elif msg.HasField(fd.name):
                out[fd.name] = message_dict(value)
            else:
                out[fd.name] = None
        elif fd.is_repeated:
            out[fd.name] = list(value)
        elif isinstance(value, bytes):
            out[fd.name] = value.hex()
        else:
            out[fd.name] = value
    return out


def admin_outcome(msg: admin_pb2.AdminResponse) -> AdminOutcome:
    which = msg.WhichOneof("result")
    return AdminOutcome(
        message=msg.message,
        receipt=receipt_or_none(msg),
        result=getattr(msg, which) if which else None,
    )


def refusal_from_proto(msg: admin_pb2.RefusalResponse) -> RefusalDocument:
    document = bytes(msg.document)
    try:
        payload = json.loads(dsse.decode_envelope(document).payload)
    except (TrustError, ValueError):
        payload = {}
    return RefusalDocument(document=document, payload=payload if isinstance(payload, dict) else {})


def receipt_or_none(msg: Any, name: str = "receipt") -> Receipt | None:
    if msg.HasField(name):
        return Receipt.from_proto(getattr(msg, name))
    return None


# --- building what the user signs --------------------------------------------------------
def build_query(
    resource: int,
    parameters: Mapping[str, str],
    basis: str,
    task_ref: str,
    justification: str,
    *,
    request_id: str | None = None,
    created_at: _dt.datetime | None = None,
) -> query_pb2.Query:
    """A :class:`Query` with a fresh uuid4 request id and ``created_at`` in Astana time."""
    if not isinstance(resource, int) or isinstance(resource, bool) or resource < 0:
        raise ClientUsageError(f"resource must be a catalogue number, got {resource!r}")
    params = {str(k): str(v) for k, v in parameters.items()}
    return query_pb2.Query(
        request_id=request_id or str(uuid.uuid4()),
        resource=resource,
        parameters=params,
        basis=basis,
        task_ref=task_ref,
        justification=justification,
        created_at=astana_iso(created_at or now_utc()),
    )


def serialize_query(query: query_pb2.Query) -> bytes:
    """Deterministic wire bytes of ``query`` (map entries in key order)."""
    data: bytes = query.SerializeToString(deterministic=True)
    return data


def prepare_query(query: query_pb2.Query, signer: Signer) -> PreparedQuery:
    """Serialize ``query`` deterministically and sign it as a DSSE query envelope."""
    payload = serialize_query(query)
    envelope = dsse.sign_envelope(dsse.PAYLOAD_QUERY, payload, signer)
    return PreparedQuery(
        query=query, envelope=envelope, payload_digest=hashlib.sha256(payload).digest()
    )


def sign_login_challenge(challenge: bytes, signer: Signer) -> common_pb2.Envelope:
    """The token's signature over the gateway's login challenge (first factor, R5)."""
    return envelope_to_proto(dsse.sign_envelope(dsse.PAYLOAD_LOGIN_CHALLENGE, challenge, signer))


def consent_payload(consent: Consent, user_id: str, signed_at: _dt.datetime | None = None) -> bytes:
    """The consent JSON the user signs: version, text digest (hex), user id, time."""
    doc = {
        "version": consent.version,
        "sha256": consent.sha256.hex(),
        "user_id": user_id,
        "signed_at": astana_iso(signed_at or now_utc()),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_consent(consent: Consent, user_id: str, signer: Signer) -> common_pb2.Envelope:
    """The signed consent envelope (R6)."""
    if hashlib.sha256(consent.text.encode("utf-8")).digest() != consent.sha256:
        raise ResultVerificationError("the consent text does not match its SHA-256 digest")
    payload = consent_payload(consent, user_id)
    return envelope_to_proto(dsse.sign_envelope(dsse.PAYLOAD_CONSENT, payload, signer))


def admin_command(command: ProtoMessage) -> admin_pb2.AdminCommand:
    """Wrap one admin command message (``EnrollUser``, ``RevokeCertificate``, ...).

    An :class:`AdminCommand` is passed through, with request id and time filled in when
    empty.
    """
    if isinstance(command, admin_pb2.AdminCommand):
        wrapped = admin_pb2.AdminCommand()
        wrapped.CopyFrom(command)
    else:
        wrapped = admin_pb2.AdminCommand()
        oneof = admin_pb2.AdminCommand.DESCRIPTOR.oneofs_by_name["command"]
        for fd in oneof.fields:
            if fd.message_type.full_name == command.DESCRIPTOR.full_name:
                getattr(wrapped, fd.name).CopyFrom(command)
                break
        else:
            raise ClientUsageError(
                f"{command.DESCRIPTOR.full_name} is not an admin command message"
            )
    if not wrapped.request_id:
        wrapped.request_id = str(uuid.uuid4())
    if not wrapped.created_at:
        wrapped.created_at = astana_iso()
    return wrapped


def sign_admin(command: admin_pb2.AdminCommand, signer: Signer) -> admin_pb2.AdminRequest:
    payload = command.SerializeToString(deterministic=True)
    envelope = dsse.sign_envelope(dsse.PAYLOAD_ADMIN, payload, signer)
    return admin_pb2.AdminRequest(envelope=envelope_to_proto(envelope))


def sign_applicant_proof(application_id: str, signer: Signer) -> admin_pb2.ApplicantRequest:
    """The applicant's proof (signed with the application's certificate, embedded)."""
    if signer.certificate is None:
        raise ClientUsageError("the applicant's signer needs its certificate (--cert)")
    proof = admin_pb2.ApplicantProof(application_id=application_id, created_at=astana_iso())
    envelope = dsse.sign_envelope(
        documents.PAYLOAD_APPLICANT_PROOF, proof.SerializeToString(deterministic=True), signer
    )
    return admin_pb2.ApplicantRequest(proof=envelope_to_proto(envelope))


def iso_time(value: _dt.datetime | str | None) -> str:
    """A time for a command field: an aware datetime in Astana ISO 8601, a string as given,
    None as ""."""
    if value is None:
        return ""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ClientUsageError("times need a UTC offset (an aware datetime)")
        return astana_iso(value)
    return value


# --- verifying what the gateway signs -----------------------------------------------------
class PinnedGatewayVerifier:
    """Verifies DSSE signatures against pinned gateway certificates only.

    A signature counts when its key id names a pinned certificate's key, any embedded
    certificate is that same certificate, the certificate is inside its validity period,
    and the signature verifies. Implements :class:`signing.dsse.SignatureVerifier`.
    """

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self._certs: dict[str, x509.Certificate] = {}
        for cert in certificates:
            key = cert.public_key()
            if not isinstance(
                key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
            ):
                raise ConfigError("pinned gateway certificate has an unsupported key type")
            self._certs[key_id_for(key)] = cert
        if not self._certs:
            raise ConfigError("no gateway certificate pinned")

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._certs)

    @property
    def public_keys(self) -> list[PublicKey]:
        """The pinned gateway keys (they also sign the audit checkpoints)."""
        out: list[PublicKey] = []
        for cert in self._certs.values():
            key = cert.public_key()
            assert isinstance(
                key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
            )
            out.append(key)
        return out

    def verify_signature(self, signature: dsse.EnvSig, message: bytes) -> dsse.VerifiedSigner:
        cert = self._certs.get(signature.keyid)
        if cert is None:
            raise UnknownSigner(f"result not signed by the pinned gateway key ({signature.keyid})")
        if signature.cert_der is not None and signature.cert_der != cert.public_bytes(
            serialization.Encoding.DER
        ):
            raise UnknownSigner("result carries a certificate other than the pinned one")
        now = now_utc()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise CertificateExpired(
                "pinned gateway certificate is outside its validity period",
                detail=f"valid {astana_iso(cert.not_valid_before_utc)} .. "
                f"{astana_iso(cert.not_valid_after_utc)}",
            )
        key = cert.public_key()
        assert isinstance(
            key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        )
        verify_with_key(key, message, signature.sig)  # the policy the gateway applies
        return dsse.VerifiedSigner(keyid=signature.keyid, public_key=key, certificate=cert)


def load_certificates(
    source: str | Path | bytes | x509.Certificate | Sequence[Any],
) -> list[x509.Certificate]:
    """Certificates from a PEM/DER file path, PEM/DER bytes, a certificate, or a list of those."""
    if isinstance(source, x509.Certificate):
        return [source]
    if isinstance(source, list | tuple):
        out: list[x509.Certificate] = []
        for item in source:
            out.extend(load_certificates(item))
        return out
    if isinstance(source, str | Path):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read certificate file {source}", detail=str(exc)) from exc
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        raise ConfigError(f"cannot read a certificate from {type(source).__name__}")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion) as exc:
        raise ConfigError("not an X.509 certificate (PEM or DER)", detail=str(exc)) from exc


def verify_result(
    response: query_pb2.QueryResponse,
    prepared: PreparedQuery,
    verifier: dsse.SignatureVerifier,
) -> QueryOutcome:
    """Check the gateway's signed answer to ``prepared`` and return it typed.

    Raises :class:`ResultVerificationError` (a :class:`TrustError`) when the signature is
    not the pinned gateway's, or the result is not bound to the request that was sent.
    """
    if not response.HasField("result"):
        raise ResultVerificationError("gateway answer carries no result envelope")
    try:
        envelope = envelope_from_proto(response.result)
        verified = dsse.verify_envelope(envelope, verifier, payload_types=[dsse.PAYLOAD_RESULT])
    except TrustError as exc:
        raise ResultVerificationError(
            "the gateway's result signature did not verify", detail=exc.diagnostics()
        ) from exc
    result = query_pb2.QueryResult()
    try:
        result.ParseFromString(verified.payload)
    except DecodeError as exc:
        raise ResultVerificationError("signed result payload is not a QueryResult") from exc
    if result.request_id != prepared.request_id:
        raise ResultVerificationError(
            "result answers another request",
            detail=f"sent {prepared.request_id}, got {result.request_id}",
        )
    if bytes(result.request_digest) != prepared.payload_digest:
        raise ResultVerificationError("result is not bound to the signed query that was sent")
    if result.resource != prepared.query.resource:
        raise ResultVerificationError("result is for another resource")
    data: dict[str, Any] = (
        _ints(json_format.MessageToDict(result.data)) if result.HasField("data") else {}
    )
    return QueryOutcome(
        request_id=result.request_id,
        resource=result.resource,
        resource_name=result.resource_name,
        access_right=result.access_right,
        truncated=result.truncated,
        data=data,
        produced_at=result.produced_at,
        receipt=receipt_or_none(response),
        result_envelope=envelope,
        gateway_key_id=verified.signers[0].keyid,
    )


def _ints(value: Any) -> Any:
    """``google.protobuf.Struct`` keeps every number as a double: give integral ones back as
    ``int`` (``1.0`` -> ``1``) so counts and years read naturally."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


# --- responses to typed values -----------------------------------------------------------
def status_from_proto(msg: query_pb2.ServiceStatus) -> ServiceStatusInfo:
    return ServiceStatusInfo(
        serving=msg.serving,
        now=msg.now,
        reason=msg.reason,
        current=MaintenanceInfo.from_proto(msg.current) if msg.HasField("current") else None,
        windows=tuple(MaintenanceInfo.from_proto(w) for w in msg.windows),
    )


def resources_from_proto(msg: query_pb2.ListResourcesResponse) -> list[ResourceInfo]:
    return [
        ResourceInfo(
            number=r.number,
            name=r.name,
            access_right=r.access_right,
            parameters=tuple(r.parameters),
        )
        for r in msg.resources
    ]


def checkpoint_from_proto(msg: audit_pb2.Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(
        signed_checkpoint=bytes(msg.signed_checkpoint),
        tree_size=msg.tree_size,
        root_hash=bytes(msg.root_hash),
        key_id=msg.key_id,
        audit_key=AuditKeyInfo(
            origin=msg.audit_key.origin,
            public_key_der=bytes(msg.audit_key.public_key_der),
            signer_key_id=msg.audit_key.signer_key_id,
            signature=bytes(msg.audit_key.signature),
        ) if msg.HasField("audit_key") else None,
    )


def proof_from_proto(msg: audit_pb2.InclusionProof) -> InclusionProofInfo:
    return InclusionProofInfo(
        leaf_index=msg.leaf_index,
        tree_size=msg.tree_size,
        leaf_hash=bytes(msg.leaf_hash),
        hashes=tuple(bytes(h) for h in msg.hashes),
    )


def consistency_from_proto(msg: audit_pb2.ConsistencyProof) -> ConsistencyProofInfo:
    return ConsistencyProofInfo(
        first=msg.first, second=msg.second, hashes=tuple(bytes(h) for h in msg.hashes)
    )


def consent_from_proto(msg: auth_pb2.ConsentText) -> Consent:
    return Consent(version=msg.version, text=msg.text, sha256=bytes(msg.sha256))


FACTORS = {"sms": auth_pb2.SECOND_FACTOR_SMS, "biometric": auth_pb2.SECOND_FACTOR_BIOMETRIC}


def factor_value(factor: str) -> Any:
    try:
        return FACTORS[factor]
    except KeyError:
        raise ClientUsageError(
            f"unknown second factor {factor!r} (choose sms or biometric)"
        ) from None


def certificate_der(signer: Signer, certificate: x509.Certificate | bytes | None) -> bytes:
    """The DER certificate to present at login: the given one, else the signer's."""
    if isinstance(certificate, bytes):
        return certificate
    cert = certificate or signer.certificate
    if cert is None:
        raise ClientUsageError("login needs the user's certificate (none given, none on signer)")
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# --- transport ---------------------------------------------------------------------------
def _read(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}", detail=str(exc)) from exc


def channel_credentials(
    ca_file: str | Path,
    client_cert_file: str | Path | None = None,
    client_key_file: str | Path | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials trusting ``ca_file``, with an optional client certificate."""
    if (client_cert_file is None) != (client_key_file is None):
        raise ConfigError("a client certificate needs both the certificate and the key file")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA file"),
        private_key=_read(client_key_file, "client key"),
        certificate_chain=_read(client_cert_file, "client certificate"),
    )


def channel_options(server_name: str | None) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ]
    if server_name:
        opts.append(("grpc.ssl_target_name_override", server_name))
    return opts


def client_error(method: str, exc: grpc.RpcError) -> ClientError:
    """A :class:`ClientError` from a failed call: its status code and details, and from
    the ``google.rpc.Status`` the gateway attaches its ErrorInfo (reason, metadata) and
    an ``AuditReceipt`` if there is one."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    reason, metadata, receipt = _rich_status(exc)
    return ClientError(method, code or grpc.StatusCode.UNKNOWN, details or "",
                       reason=reason, metadata=metadata, receipt=receipt)


def _rich_status(exc: grpc.RpcError) -> tuple[str, dict[str, str], Receipt | None]:
    """The ErrorInfo reason and metadata and the AuditReceipt of a failed call's
    ``grpc-status-details-bin`` (empty when absent or unreadable)."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    raw = next((v for k, v in (trailing or ()) if k == "grpc-status-details-bin"), None)
    if not isinstance(raw, bytes):
        return "", {}, None
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except DecodeError:
        return "", {}, None
    reason, metadata, receipt = "", {}, None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(common_pb2.AuditReceipt.DESCRIPTOR):
            msg = common_pb2.AuditReceipt()
            if detail.Unpack(msg):
                receipt = Receipt.from_proto(msg)
    return reason, metadata, receipt


# --- audit receipts, verified offline ------------------------------------------------------
AUDIT_ORIGIN = "sio-gateway/audit"


def endorsed_audit_key(
    endorsement: AuditKeyInfo, gateway_keys: Iterable[PublicKey], *, origin: str = AUDIT_ORIGIN
) -> PublicKey:
    """The audit key the gateway's result key vouches for (``Checkpoint.audit_key``).

    The endorsement must be for ``origin``, signed by one of ``gateway_keys`` (the pinned
    gateway certificates' keys) over :func:`signing.note.audit_key_statement`, and must
    not name a gateway key itself (the audit key is a key of its own). Raises
    :class:`ResultVerificationError` otherwise.
    """
    if endorsement.origin != origin:
        raise ResultVerificationError(
            f"the audit key is endorsed for log {endorsement.origin!r}, not {origin!r}")
    signers = {key_id_for(k): k for k in gateway_keys}
    gateway_key = signers.get(endorsement.signer_key_id)
    if gateway_key is None:
        raise ResultVerificationError("the audit key is not endorsed by a pinned gateway key")
    try:
        audit_key = serialization.load_der_public_key(endorsement.public_key_der)
    except ValueError as exc:
        raise ResultVerificationError("the endorsed audit key is not a public key") from exc
    if not isinstance(
        audit_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        raise ResultVerificationError("the endorsed audit key has an unsupported type")
    if key_id_for(audit_key) in signers:
        raise ResultVerificationError("the audit key is the gateway's result key")
    try:
        verify_with_key(gateway_key, audit_key_statement(origin, audit_key),
                        endorsement.signature)
    except TrustError as exc:
        raise ResultVerificationError("the audit key's endorsement does not verify") from exc
    return audit_key


def verify_receipt(
    receipt: Receipt,
    proof: InclusionProofInfo,
    checkpoint: CheckpointInfo,
    keys: Iterable[PublicKey],
    *,
    origin: str = AUDIT_ORIGIN,
    audit_keys: Sequence[PublicKey] | None = None,
) -> int:
    """Check that ``receipt`` is in the log the signed ``checkpoint`` commits to.

    The checkpoint is signed by the gateway's audit key, a key of its own: ``audit_keys``
    when the caller pins them, else the key the checkpoint's endorsement names, once
    :func:`endorsed_audit_key` checked that endorsement against ``keys`` (the pinned
    gateway keys). The checkpoint's signature is verified *before* it is parsed
    (:func:`signing.note.open_checkpoint`), then the receipt's tree must be inside the
    checkpoint's and the inclusion proof of the receipt's leaf at its sequence number is
    checked against the checkpoint's root. Returns the tree size; raises an
    :class:`~siogw_api.errors.AuditError` (or :class:`ResultVerificationError`)
    otherwise. Pure: no network, no files.
    """
    if audit_keys is None:
        if checkpoint.audit_key is None:
            raise ResultVerificationError(
                "the checkpoint names no audit key and none is pinned (audit_keys=)")
        audit_keys = [endorsed_audit_key(checkpoint.audit_key, keys, origin=origin)]
    trusted = [TrustedKey(public_key=k, algorithm=audit_algorithm(k)) for k in audit_keys]
    cp, _key = open_checkpoint(checkpoint.signed_checkpoint, trusted, origin=origin)
    if proof.tree_size != cp.size:
        raise ResultVerificationError(
            f"proof is for a tree of size {proof.tree_size}, the checkpoint has {cp.size}"
        )
    if receipt.tree_size > cp.size or receipt.seq >= cp.size:
        raise ResultVerificationError(
            f"the checkpoint (size {cp.size}) does not cover the receipt "
            f"(seq {receipt.seq}, tree size {receipt.tree_size})")
    if proof.leaf_index != receipt.seq or proof.leaf_hash != receipt.leaf_hash:
        raise ResultVerificationError("the proof is for another leaf than the receipt's")
    verify_inclusion(receipt.leaf_hash, receipt.seq, cp.size, list(proof.hashes), cp.root_hash)
    return cp.size
