"""The one signature-verification policy of sio-gateway: pure functions, no I/O.

Every verifier of the project (users' envelopes on the gateway, certificate chains,
audit checkpoints and seals, results in the client library, ``siogw verify``) checks
signatures here, so that a signature one of them refuses, none accepts:

* ECDSA only on P-256 with SHA-256 (DER ``ECDSA-Sig-Value``);
* RSA of at least :data:`MIN_RSA_BITS` bits, SHA-256, PSS (MGF1-SHA256, 32-byte salt)
  or PKCS#1 v1.5;
* Ed25519.

:func:`verify_signature` checks one named algorithm; :func:`verify_with_key` tries the
algorithms :func:`algorithms_for_key` allows for the key (DSSE signatures do not name
their algorithm). Both return or raise :class:`BadSignature`; a key that cannot carry
the named algorithm raises :class:`UnsupportedAlgorithm`.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signing.api import Algorithm, PublicKey, key_id_for
from signing.errors import BadSignature, UnsupportedAlgorithm
from siogw_api.errors import SigningError

#: RSA-PSS parameters sio-gateway uses: MGF1 with SHA-256, 32-byte salt.
PSS_SALT_LENGTH = 32
#: Smallest RSA modulus accepted for signing or verifying.
MIN_RSA_BITS = 2048


def pss_padding() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)


def coerce_algorithm(algorithm: Algorithm | str) -> Algorithm:
    """An :class:`Algorithm` from itself or its wire name."""
    try:
        return Algorithm(algorithm)
    except ValueError:
        raise UnsupportedAlgorithm(f"unknown signature algorithm {str(algorithm)[:64]!r}") from None


def check_key_algorithm(public_key: object, algorithm: Algorithm) -> None:
    """Raise :class:`UnsupportedAlgorithm` unless ``public_key`` can carry ``algorithm``."""
    if algorithm is Algorithm.ECDSA_P256_SHA256:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
            public_key.curve, ec.SECP256R1
        ):
            return
    elif algorithm in (Algorithm.RSA_PSS_SHA256, Algorithm.RSA_PKCS1_SHA256):
        if isinstance(public_key, rsa.RSAPublicKey):
            if public_key.key_size < MIN_RSA_BITS:
                raise UnsupportedAlgorithm(
                    f"RSA key of {public_key.key_size} bits is below the {MIN_RSA_BITS}-bit minimum"
                )
            return
    elif algorithm is Algorithm.ED25519:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            return
    raise UnsupportedAlgorithm(
        f"a {describe_key(public_key)} key cannot verify {algorithm.value} signatures"
    )


def describe_key(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(public_key).__name__


def verify_signature(
    public_key: PublicKey, algorithm: Algorithm | str, payload: bytes, signature: bytes
) -> None:
    """Check ``signature`` over ``payload`` (the message, not a digest).

    ECDSA signatures are DER ``ECDSA-Sig-Value``; RSA-PSS uses MGF1-SHA256 and a 32-byte
    salt. Raises :class:`BadSignature` if it does not verify.
    """
    alg = coerce_algorithm(algorithm)
    check_key_algorithm(public_key, alg)
    if not isinstance(payload, bytes | bytearray | memoryview) or not isinstance(
        signature, bytes | bytearray | memoryview
    ):
        raise BadSignature("payload and signature must be bytes")
    payload = bytes(payload)
    signature = bytes(signature)
    try:
        if alg is Algorithm.ECDSA_P256_SHA256:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif alg is Algorithm.RSA_PSS_SHA256:
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(signature, payload, pss_padding(), hashes.SHA256())
        elif alg is Algorithm.RSA_PKCS1_SHA256:
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(public_key, ed25519.Ed25519PublicKey)
            public_key.verify(signature, payload)
    except InvalidSignature:
        raise BadSignature(f"{alg.value} signature does not verify") from None
    except ValueError as exc:  # malformed DER and similar
        raise BadSignature(f"{alg.value} signature is malformed", detail=str(exc)) from None


def algorithms_for_key(public_key: PublicKey) -> tuple[Algorithm, ...]:
    """The algorithms a signature by ``public_key`` may use (RSA: PSS, then PKCS#1 v1.5)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise BadSignature(f"unsupported EC curve {public_key.curve.name}")
        return (Algorithm.ECDSA_P256_SHA256,)
    if isinstance(public_key, rsa.RSAPublicKey):
        return (Algorithm.RSA_PSS_SHA256, Algorithm.RSA_PKCS1_SHA256)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return (Algorithm.ED25519,)
    raise BadSignature(f"unsupported public key type {type(public_key).__name__}")


def verify_with_key(
    public_key: PublicKey,
    message: bytes,
    signature: bytes,
    algorithm: Algorithm | None = None,
) -> Algorithm:
    """Check ``signature`` over ``message``; return the algorithm that verified.

    Without ``algorithm`` every algorithm the key type allows is tried (DSSE signatures
    do not name their algorithm). Raises :class:`BadSignature`.
    """
    candidates = (algorithm,) if algorithm is not None else algorithms_for_key(public_key)
    for alg in candidates:
        try:
            verify_signature(public_key, alg, message, signature)
        except BadSignature:
            continue
        except SigningError as exc:  # e.g. UnsupportedAlgorithm from the backend layer
            raise BadSignature(exc.message, detail=exc.detail) from exc
        return alg
    raise BadSignature(f"signature does not verify with key {key_id_for(public_key)[:16]}…")
