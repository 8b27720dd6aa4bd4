"""The client refuses what the server refuses: one table of keys and signature schemes.

Each case is a gateway key and a way of signing with it. The same signature is judged
twice: by :func:`signing.verify.verify_with_key` (the policy the gateway applies to
users' signatures) and by the client's result verification
(:func:`clients._common.verify_result` with the key's certificate pinned). Both must
accept exactly the cases the policy allows, and refuse the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from clients import _common as c
from clients.errors import ResultVerificationError
from signing import dsse
from signing.api import Algorithm, PublicKey, Signer
from signing.errors import BadSignature
from signing.verify import verify_with_key
from siogw_api.v1 import query_pb2

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _pss(mgf_hash: hashes.HashAlgorithm, salt: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)


@dataclass(frozen=True)
class Case:
    name: str
    key: Callable[[], PrivateKey]
    sign: Callable[[Any, bytes], bytes]
    accepted: bool

    def __str__(self) -> str:
        return self.name


def _p256() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _rsa(bits: int) -> Callable[[], PrivateKey]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


CASES = [
    # inside the policy
    Case("ec-p256-sha256", _p256, lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA256())), True),
    Case(
        "rsa2048-pss-sha256",
        _rsa(2048),
        lambda k, m: k.sign(m, _pss(hashes.SHA256(), 32), hashes.SHA256()),
        True,
    ),
    Case(
        "rsa2048-pkcs1-sha256",
        _rsa(2048),
        lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256()),
        True,
    ),
    Case("ed25519", ed25519.Ed25519PrivateKey.generate, lambda k, m: k.sign(m), True),
    # outside: curve, key size, hash, padding parameters
    Case(
        "ec-p384-sha384",
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA384())),
        False,
    ),
    Case(
        "ec-p384-sha256",
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA256())),
        False,
    ),
    Case("ec-p256-sha384", _p256, lambda k, m: k.sign(m, ec.ECDSA(hashes.SHA384())), False),
    Case(
        "rsa1024-pkcs1-sha256",
        _rsa(1024),
        lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA256()),
        False,
    ),
    Case(
        "rsa1024-pss-sha256",
        _rsa(1024),
        lambda k, m: k.sign(m, _pss(hashes.SHA256(), 32), hashes.SHA256()),
        False,
    ),
    Case(
        "rsa2048-pkcs1-sha1",
        _rsa(2048),
        lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA1()),
        False,
    ),
    Case(
        "rsa2048-pkcs1-sha512",
        _rsa(2048),
        lambda k, m: k.sign(m, padding.PKCS1v15(), hashes.SHA512()),
        False,
    ),
    Case(
        "rsa2048-pss-sha512",
        _rsa(2048),
        lambda k, m: k.sign(m, _pss(hashes.SHA512(), 32), hashes.SHA512()),
        False,
    ),
    Case(
        "rsa2048-pss-mgf1-sha1",
        _rsa(2048),
        lambda k, m: k.sign(m, _pss(hashes.SHA1(), 32), hashes.SHA256()),
        False,
    ),
    Case(
        "rsa2048-pss-salt20",
        _rsa(2048),
        lambda k, m: k.sign(m, _pss(hashes.SHA256(), 20), hashes.SHA256()),
        False,
    ),
]


class CaseSigner(Signer):
    """Signs as the table says, whatever the policy thinks of it (the gateway's key here)."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.key = case.key()
        self._cert = _self_signed(self.key)

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm.ECDSA_P256_SHA256  # not consulted: DSSE names no algorithm

    @property
    def public_key(self) -> PublicKey:
        key = self.key.public_key()
        assert isinstance(
            key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        )
        return key

    @property
    def certificate(self) -> x509.Certificate | None:
        return self._cert

    def sign(self, payload: bytes) -> bytes:
        return self.case.sign(self.key, payload)


def _self_signed(key: PrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = dt.datetime.now(dt.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, algorithm)
    )


def server_accepts(gateway: CaseSigner, message: bytes, signature: bytes) -> bool:
    try:
        verify_with_key(gateway.public_key, message, signature)
    except BadSignature:
        return False
    return True


def client_accepts(gateway: CaseSigner) -> bool:
    user = CaseSigner(CASES[0])
    query = c.build_query(1, {"iin": "900101300017"}, "financial monitoring", "T-1", "policy")
    prepared = c.prepare_query(query, user)
    result = query_pb2.QueryResult(
        request_id=prepared.request_id,
        resource=1,
        resource_name="Individuals",
        access_right="full",
        produced_at="2026-11-22T04:00:00+05:00",
        request_digest=hashlib.sha256(prepared.envelope.payload).digest(),
    )
    envelope = dsse.sign_envelope(dsse.PAYLOAD_RESULT, result.SerializeToString(), gateway)
    response = query_pb2.QueryResponse(result=c.envelope_to_proto(envelope))
    verifier = c.PinnedGatewayVerifier([gateway._cert])
    try:
        out = c.verify_result(response, prepared, verifier)
    except ResultVerificationError:
        return False
    assert out.request_id == prepared.request_id
    return True


@pytest.mark.parametrize("case", CASES, ids=str)
def test_client_refuses_what_the_server_refuses(case: Case) -> None:
    gateway = CaseSigner(case)
    message = dsse.pae(dsse.PAYLOAD_RESULT, b"one message for both checks")
    signature = gateway.sign(message)
    server = server_accepts(gateway, message, signature)
    client = client_accepts(gateway)
    assert server == client == case.accepted, (case.name, server, client)


def test_the_table_covers_both_outcomes() -> None:
    assert {case.accepted for case in CASES} == {True, False}
    assert sum(not case.accepted for case in CASES) >= 8
