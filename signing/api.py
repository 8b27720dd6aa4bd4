"""The signing interface: what every backend provides and what every verifier checks.

Backends (PKCS#11 on a hardware token, software keys for the test CA) implement
:class:`Signer`; they are chosen by the scheme of a key URI through
:func:`signing.load_signer`. Signatures are always in the standard encoding of their
algorithm: DER ``ECDSA-Sig-Value`` for ECDSA, raw RSASSA bytes for RSA, 64 raw bytes for
Ed25519.
"""

from __future__ import annotations

import abc
import enum
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signing.bytecache import ByteBoundedCache

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class Algorithm(str, enum.Enum):  # noqa: UP042 - str() stays "Algorithm.X"; .value is the wire name
    """Signature algorithms sio-gateway signs and verifies. Values are wire names."""

    ECDSA_P256_SHA256 = "ecdsa-p256-sha256"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PKCS1_SHA256 = "rsa-pkcs1v15-sha256"
    ED25519 = "ed25519"


def key_id_for(public_key: PublicKey) -> str:
    """Key id: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


#: What is derived from a certificate, per certificate: [DER, public key, key id]
#: (filled as asked). Each entry is charged four times its DER (the key object holds its
#: DER, the DER itself, the parsed key and id); 4 MiB in all, nothing kept for a
#: certificate over 16 KiB (:mod:`signing.bytecache`).
CERTIFICATE_FACTS = ByteBoundedCache(max_bytes=4 * 1024 * 1024, max_der_bytes=16 * 1024)


def _facts(cert: x509.Certificate) -> list[Any]:
    facts: list[Any] | None = CERTIFICATE_FACTS.get(cert)
    if facts is None:
        der = cert.public_bytes(serialization.Encoding.DER)
        facts = [der, None, None]
        CERTIFICATE_FACTS.put(cert, facts, cost=4 * len(der), der_bytes=len(der))
    return facts


def certificate_key_id(cert: x509.Certificate) -> str:
    """:func:`key_id_for` the certificate's key, remembered per certificate.

    A certificate is immutable and hashes by its DER, so the answer never goes stale; the
    verifier asks it several times per signed request (parsing the key and hashing its
    SubjectPublicKeyInfo each time cost ~60 us a request).
    """
    facts = _facts(cert)
    if facts[2] is None:
        facts[2] = key_id_for(certificate_public_key(cert))
    return str(facts[2])


def certificate_public_key(cert: x509.Certificate) -> PublicKey:
    """``cert.public_key()``, parsed once per certificate (key objects are immutable)."""
    facts = _facts(cert)
    if facts[1] is None:
        facts[1] = cert.public_key()
    key: PublicKey = facts[1]
    return key


def certificate_der(cert: x509.Certificate) -> bytes:
    """The certificate's DER encoding, encoded once per certificate."""
    der: bytes = _facts(cert)[0]
    return der


@dataclass(frozen=True)
class Signature:
    """One signature with the facts a verifier needs to pick the key."""

    keyid: str
    algorithm: Algorithm
    sig: bytes


class Signer(abc.ABC):
    """Something that signs bytes with one private key.

    Implementations are safe to call from many threads at once.
    """

    @property
    @abc.abstractmethod
    def algorithm(self) -> Algorithm:
        """The algorithm :meth:`sign` uses."""

    @property
    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        """The public half of the signing key."""

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    @property
    def certificate(self) -> x509.Certificate | None:
        """The X.509 certificate bound to this key, if one is known."""
        return None

    @abc.abstractmethod
    def sign(self, payload: bytes) -> bytes:
        """Sign ``payload`` (the message itself, not a digest) and return the signature."""

    def sign_detached(self, payload: bytes) -> Signature:
        return Signature(keyid=self.key_id, algorithm=self.algorithm, sig=self.sign(payload))
