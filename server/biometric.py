"""The biometric second factor (R5), modelled on a platform authenticator.

At enrolment the user's device registers an EC P-256 public key (SubjectPublicKeyInfo
DER, ``EnrollUser.device_public_key_der``). At login the gateway hands out a random
device challenge; the device signs exactly those bytes (ECDSA P-256 with SHA-256, DER)
after a local fingerprint / face match and returns the signature with its key id and
the match method. The gateway never sees biometric data, only the device signature.

The embedded client side is a software stand-in (``clients.biometric.SoftwareDeviceKey``).
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.errors import LoginFailed
from signing.api import key_id_for
from siogw_api.errors import InputError

METHODS: frozenset[str] = frozenset({"fingerprint", "face"})


class BiometricVerifier(Protocol):
    """Checks a device assertion against the enrolled device key."""

    def verify(
        self, device_key_der: bytes, challenge: bytes, key_id: str, signature: bytes, method: str
    ) -> None:
        """Return None if the assertion is valid, else raise :class:`LoginFailed`."""
        ...


def load_device_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """Parse and check an enrolled device key: EC P-256 SubjectPublicKeyInfo."""
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise InputError("device key is not a DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError("device key must be an EC P-256 key")
    return key


class PlatformAuthenticatorVerifier:
    """The default :class:`BiometricVerifier` (see module docstring)."""

    def verify(
        self, device_key_der: bytes, challenge: bytes, key_id: str, signature: bytes, method: str
    ) -> None:
        key = load_device_key(device_key_der)
        if method not in METHODS:
            raise LoginFailed(f"unknown biometric method {method!r}")
        if key_id != key_id_for(key):
            raise LoginFailed("the assertion comes from a device key not enrolled for this user")
        try:
            key.verify(signature, challenge, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise LoginFailed("device signature over the challenge does not verify") from None
