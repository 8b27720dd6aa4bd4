"""Result verification without a server: pinned key, binding to the request, tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import struct_pb2

from clients import _common as c
from clients.biometric import BiometricMismatch, SoftwareDeviceKey
from clients.errors import ClientUsageError, ResultVerificationError
from signing import dsse
from signing.api import Algorithm, PublicKey, Signer
from siogw_api.v1 import admin_pb2, common_pb2, query_pb2


class EcSigner(Signer):
    """A throwaway in-memory P-256 signer for these tests."""

    def __init__(self, cert: x509.Certificate | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self._cert = cert

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm.ECDSA_P256_SHA256

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    @property
    def certificate(self) -> x509.Certificate | None:
        return self._cert

    def sign(self, payload: bytes) -> bytes:
        return self.key.sign(payload, ec.ECDSA(hashes.SHA256()))


def self_signed(signer: EcSigner, days: int = 30) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(signer.key, hashes.SHA256())
    )


@pytest.fixture
def gateway() -> EcSigner:
    s = EcSigner()
    s._cert = self_signed(s)
    return s


def answer(prepared: c.PreparedQuery, gw: Signer, **overrides: object) -> query_pb2.QueryResponse:
    data = struct_pb2.Struct()
    data.update({"name": "Demo Person", "contributions": [{"month": "2026-01"}]})
    fields: dict[str, object] = {
        "request_id": prepared.request_id,
        "resource": prepared.query.resource,
        "resource_name": "Pension contributions",
        "access_right": "truncated",
        "truncated": True,
        "data": data,
        "produced_at": "2026-11-22T04:00:00+05:00",
        "request_digest": hashlib.sha256(prepared.envelope.payload).digest(),
    }
    fields.update(overrides)
    result = query_pb2.QueryResult(**fields)  # type: ignore[arg-type]
    env = dsse.sign_envelope(dsse.PAYLOAD_RESULT, result.SerializeToString(), gw)
    return query_pb2.QueryResponse(
        result=c.envelope_to_proto(env),
        receipt=common_pb2.AuditReceipt(seq=7, leaf_hash=b"\x01" * 32, tree_size=8),
    )


def prepared_query() -> c.PreparedQuery:
    user = EcSigner()
    q = c.build_query(11, {"iin": "900101300017"}, "financial monitoring", "T-1", "check")
    return c.prepare_query(q, user)


def test_query_is_deterministic_and_signed() -> None:
    q = c.build_query(1, {"b": "2", "a": "1"}, "financial monitoring", "T-1", "why")
    assert len(q.request_id) == 36 and q.created_at.endswith("+05:00")
    assert c.serialize_query(q) == c.serialize_query(q)
    user = EcSigner()
    p = c.prepare_query(q, user)
    assert p.envelope.payload_type == dsse.PAYLOAD_QUERY
    back = query_pb2.Query.FromString(p.envelope.payload)
    assert back == q
    user.key.public_key().verify(
        p.envelope.signatures[0].sig, p.envelope.pae(), ec.ECDSA(hashes.SHA256())
    )


def test_verified_result(gateway: EcSigner) -> None:
    p = prepared_query()
    verifier = c.PinnedGatewayVerifier([gateway.certificate])  # type: ignore[list-item]
    out = c.verify_result(answer(p, gateway), p, verifier)
    assert out.truncated and out.data["name"] == "Demo Person"
    assert out.receipt == c.Receipt(seq=7, leaf_hash=b"\x01" * 32, tree_size=8)
    assert out.result_envelope.payload_type == dsse.PAYLOAD_RESULT
    assert json.loads(out.result_envelope.to_json())["payloadType"] == dsse.PAYLOAD_RESULT


def test_result_from_another_key_refused(gateway: EcSigner) -> None:
    p = prepared_query()
    impostor = EcSigner()
    verifier = c.PinnedGatewayVerifier([gateway.certificate])  # type: ignore[list-item]
    with pytest.raises(ResultVerificationError, match="did not verify"):
        c.verify_result(answer(p, impostor), p, verifier)


def test_tampered_result_refused(gateway: EcSigner) -> None:
    p = prepared_query()
    resp = answer(p, gateway)
    resp.result.payload = resp.result.payload.replace(b"Demo", b"Evil")
    verifier = c.PinnedGatewayVerifier([gateway.certificate])  # type: ignore[list-item]
    with pytest.raises(ResultVerificationError, match="did not verify"):
        c.verify_result(resp, p, verifier)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"request_id": "other"}, "another request"),
        ({"request_digest": b"\x00" * 32}, "not bound"),
        ({"resource": 12}, "another resource"),
    ],
)
def test_result_not_bound_to_request(gateway: EcSigner, override: dict, message: str) -> None:
    p = prepared_query()
    verifier = c.PinnedGatewayVerifier([gateway.certificate])  # type: ignore[list-item]
    with pytest.raises(ResultVerificationError, match=message):
        c.verify_result(answer(p, gateway, **override), p, verifier)


def test_wrong_payload_type_refused(gateway: EcSigner) -> None:
    p = prepared_query()
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"x", gateway)
    resp = query_pb2.QueryResponse(result=c.envelope_to_proto(env))
    verifier = c.PinnedGatewayVerifier([gateway.certificate])  # type: ignore[list-item]
    with pytest.raises(ResultVerificationError):
        c.verify_result(resp, p, verifier)


def test_admin_command_wrapping() -> None:
    cmd = c.admin_command(admin_pb2.RevokeCertificate(serial_hex="ab", reason="lost"))
    assert cmd.WhichOneof("command") == "revoke_certificate"
    assert cmd.request_id and cmd.created_at.endswith("+05:00")
    with pytest.raises(ClientUsageError):
        c.admin_command(query_pb2.Query())


def test_software_device_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "device.json"
    dev = SoftwareDeviceKey.enroll(path, b"finger-1", method="fingerprint")
    assert (path.stat().st_mode & 0o777) == 0o600
    again = SoftwareDeviceKey.load(path)
    assert again.key_id == dev.key_id
    a = again.assert_user(b"challenge", b"finger-1")
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(dev.public_key_der)
    key.verify(a.signature, b"challenge", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    with pytest.raises(BiometricMismatch):
        again.assert_user(b"challenge", b"finger-2")


def test_channel_credentials_need_cert_and_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from siogw_api.errors import ConfigError

    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"not used before the check")
    with pytest.raises(ConfigError, match="both"):
        c.channel_credentials(ca, client_cert_file=tmp_path / "c.pem")
    with pytest.raises(ConfigError, match="cannot read CA file"):
        c.channel_credentials(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"not an X\.509"):
        c.load_certificates(b"garbage")
