"""A software stand-in for a platform biometric authenticator (fingerprint / Face ID).

STAND-IN: a real deployment uses the device's platform authenticator (a secure element
that holds the device key and releases a signature only after the sensor matches the
enrolled finger or face). That hardware cannot exist here, so :class:`SoftwareDeviceKey`
plays its part behind the same interface: an EC P-256 key kept in a file (0600) plus the
SHA-256 of an enrolled "template"; it signs a device challenge only after a simulated
local match, i.e. when the presented sample equals the enrolled one. The gateway sees
exactly what it would see from real hardware: a device key id, a signature over its
challenge, and the match method.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.api import key_id_for
from siogw_api.errors import ConfigError, PolicyError

METHODS = ("fingerprint", "face")


class BiometricMismatch(PolicyError):
    """The presented sample did not match the enrolled one; nothing was signed."""


@dataclass(frozen=True)
class DeviceAssertion:
    """What the authenticator hands back after a match (``BiometricAssertion`` on the wire)."""

    device_key_id: str
    signature: bytes
    method: str


class SoftwareDeviceKey:
    """STAND-IN for a fingerprint / Face ID platform authenticator (see the module text).

    Create one with :meth:`enroll`, reopen it with :meth:`load`. The file holds the PEM
    private key and the enrolled template digest; it is written with mode 0600.
    """

    def __init__(
        self, private_key: ec.EllipticCurvePrivateKey, template_digest: bytes, method: str
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"unknown biometric method {method!r} (choose {', '.join(METHODS)})")
        self._key = private_key
        self._template = template_digest
        self.method = method

    @classmethod
    def enroll(
        cls, path: str | Path, sample: bytes, *, method: str = "fingerprint"
    ) -> SoftwareDeviceKey:
        """Make a new device key, enrol ``sample`` as the template, save to ``path`` (0600)."""
        key = ec.generate_private_key(ec.SECP256R1())
        device = cls(key, hashlib.sha256(sample).digest(), method)
        device.save(path)
        return device

    @classmethod
    def load(cls, path: str | Path) -> SoftwareDeviceKey:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            key = serialization.load_pem_private_key(doc["key_pem"].encode("ascii"), password=None)
            template = bytes.fromhex(doc["template_sha256"])
            method = str(doc.get("method", "fingerprint"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot load device key {path}", detail=str(exc)) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"device key {path} is not an EC key")
        return cls(key, template, method)

    def save(self, path: str | Path) -> None:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        doc = {"key_pem": pem, "template_sha256": self._template.hex(), "method": self.method}
        target = Path(path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.chmod(target, 0o600)

    @property
    def public_key_der(self) -> bytes:
        """SubjectPublicKeyInfo DER, for ``EnrollUser.device_public_key_der``."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> str:
        return key_id_for(self._key.public_key())

    def assert_user(self, challenge: bytes, sample: bytes) -> DeviceAssertion:
        """Simulated local match, then the device signature over ``challenge`` (ECDSA P-256).

        Raises :class:`BiometricMismatch` without signing when ``sample`` is not the
        enrolled template.
        """
        if not hmac.compare_digest(hashlib.sha256(sample).digest(), self._template):
            raise BiometricMismatch(f"{self.method} did not match the enrolled template")
        signature = self._key.sign(challenge, ec.ECDSA(hashes.SHA256()))
        return DeviceAssertion(device_key_id=self.key_id, signature=signature, method=self.method)
