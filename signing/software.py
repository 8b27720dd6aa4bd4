"""Software keys: a :class:`Signer` over a ``cryptography`` private key.

For the test CA, tests and comparisons only. The gateway and its users sign on PKCS#11
tokens (:mod:`signing.pkcs11_signer`); a software key sits in process memory and on
disk, so it is never the gateway default.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signing.api import Algorithm, PublicKey, Signer, key_id_for
from signing.certfile import CertificateSpec, load_certificate
from signing.errors import KeyNotFound, PinError, UnsupportedAlgorithm
from signing.pins import PinSpec, resolve_pin
from signing.uri import parse_software_uri
from signing.verify import check_key_algorithm, coerce_algorithm, pss_padding

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def default_algorithm(key: PrivateKey | PublicKey) -> Algorithm:
    """The algorithm a key signs with unless told otherwise (RSA: PSS)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return Algorithm.ECDSA_P256_SHA256
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return Algorithm.RSA_PSS_SHA256
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return Algorithm.ED25519
    raise UnsupportedAlgorithm(f"unsupported key type {type(key).__name__}")


def generate_software_key(algorithm: Algorithm | str) -> PrivateKey:
    """A fresh private key for ``algorithm`` (EC P-256, RSA-2048 or Ed25519)."""
    alg = coerce_algorithm(algorithm)
    if alg is Algorithm.ECDSA_P256_SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg in (Algorithm.RSA_PSS_SHA256, Algorithm.RSA_PKCS1_SHA256):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def load_pem_private_key(path: Path, password: str | None = None) -> PrivateKey:
    """Read a PEM private key file (optionally encrypted)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyNotFound(f"cannot read key file {path}", detail=exc.strerror) from exc
    try:
        key = serialization.load_pem_private_key(
            data, password.encode("utf-8") if password is not None else None
        )
    except TypeError as exc:
        raise PinError(f"key file {path}: password missing or not needed", detail=str(exc)) from exc
    except ValueError as exc:
        raise KeyNotFound(f"key file {path} is not a readable PEM private key") from exc
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise UnsupportedAlgorithm(f"key file {path} holds an unsupported key type")
    return key


class SoftwareSigner(Signer):
    """Signs with an in-memory private key. Thread-safe (``cryptography`` keys are)."""

    def __init__(
        self,
        private_key: PrivateKey,
        algorithm: Algorithm | str | None = None,
        *,
        certificate: x509.Certificate | None = None,
    ) -> None:
        self._key = private_key
        self._algorithm = (
            coerce_algorithm(algorithm) if algorithm else default_algorithm(private_key)
        )
        self._public = private_key.public_key()
        check_key_algorithm(self._public, self._algorithm)
        if certificate is not None and key_id_for(certificate.public_key()) != key_id_for(  # type: ignore[arg-type]
            self._public
        ):
            raise UnsupportedAlgorithm("the certificate does not belong to this key")
        self._certificate = certificate
        self._key_id = key_id_for(self._public)

    @classmethod
    def from_pem_file(
        cls,
        path: Path | str,
        *,
        password: str | None = None,
        algorithm: Algorithm | str | None = None,
        certificate: x509.Certificate | None = None,
    ) -> SoftwareSigner:
        return cls(
            load_pem_private_key(Path(path), password), algorithm, certificate=certificate
        )

    @classmethod
    def from_key_uri(
        cls,
        uri: str,
        *,
        pin_source: PinSpec | None,
        certificate: CertificateSpec,
        algorithm: Algorithm | None,
        sessions: int | None,
    ) -> SoftwareSigner:
        """The ``file:``/``software:`` backend of :func:`signing.load_signer`.

        ``pin_source`` (else the URI's ``pin-source``) unlocks an encrypted PEM file;
        ``sessions`` concerns tokens only and is ignored.
        """
        parsed = parse_software_uri(uri)
        spec = pin_source if pin_source is not None else parsed.pin_source
        password = resolve_pin(spec, f"key file {parsed.path}") if spec is not None else None
        return cls.from_pem_file(
            parsed.path, password=password, algorithm=algorithm,
            certificate=load_certificate(certificate),
        )

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def certificate(self) -> x509.Certificate | None:
        return self._certificate

    @property
    def private_key(self) -> PrivateKey:
        """The private key (software keys only; CA tooling needs it)."""
        return self._key

    def sign(self, payload: bytes) -> bytes:
        key = self._key
        alg = self._algorithm
        if alg is Algorithm.ECDSA_P256_SHA256:
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key.sign(payload, ec.ECDSA(hashes.SHA256()))
        if alg is Algorithm.RSA_PSS_SHA256:
            assert isinstance(key, rsa.RSAPrivateKey)
            return key.sign(payload, pss_padding(), hashes.SHA256())
        if alg is Algorithm.RSA_PKCS1_SHA256:
            assert isinstance(key, rsa.RSAPrivateKey)
            return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(payload)

    def __repr__(self) -> str:
        return f"SoftwareSigner({self._algorithm.value}, key_id={self._key_id[:16]})"
