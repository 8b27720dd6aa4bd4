"""Key management on a PKCS#11 token: :class:`Pkcs11Token` and :class:`KeyInfo`.

Generate key pairs on the token (private halves sensitive, non-extractable, sign-only),
list and export public keys, delete keys, store certificates next to their keys, change
the user PIN. Every operation runs on the token's shared, logged-in session pool
(:func:`signing.pkcs11_session.shared_session`).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pkcs11
from asn1crypto.core import Integer, ObjectIdentifier
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x
from pkcs11.constants import DEFAULT
from pkcs11.util.ec import encode_named_curve_parameters

from signing.api import PublicKey, key_id_for
from signing.errors import KeyURIError, UnsupportedAlgorithm
from signing.pins import EnvPin, FilePin, PinSpec, as_pin_source, resolve_pin
from signing.pkcs11_keys import find_objects, key_attrs, one_object, public_key_from_object
from signing.pkcs11_session import shared_session
from signing.uri import Pkcs11URI

T = TypeVar("T")

ED25519_OID = "1.3.101.112"
#: Key types :meth:`Pkcs11Token.generate_keypair` accepts.
KEY_TYPES = ("ec", "rsa", "ed25519")


@dataclass(frozen=True)
class KeyInfo:
    """A key pair on a token."""

    label: str
    id: bytes
    key_type: str
    public_key: PublicKey | None

    @property
    def key_id(self) -> str | None:
        """Key id (hex SHA-256 of the SPKI) when the public key is known."""
        return key_id_for(self.public_key) if self.public_key is not None else None


_KEY_TYPE_NAMES = {KeyType.EC: "ec", KeyType.RSA: "rsa", KeyType.EC_EDWARDS: "ed25519"}


class Pkcs11Token:
    """Key management on one token (through its shared, logged-in session).

    Keys are generated on the token: private keys are sensitive, non-extractable and
    sign-only, and both halves carry the same random 16-byte CKA_ID.
    """

    def __init__(
        self, label: str, *, pin_source: PinSpec, module_path: str | None = None
    ) -> None:
        self.label = label
        self._pin_spec = as_pin_source(pin_source)
        self._module_path = module_path

    def _run(self, op: Callable[[Any], T], what: str, key: str | None = None) -> T:
        shared = shared_session(self.label, self._module_path)
        shared.check_pin(self._pin_spec)
        return shared.run(op, pin_spec=self._pin_spec, what=what, key=key)

    def uri(self, label: str | None = None, key_id: bytes | None = None) -> str:
        """A ``pkcs11:`` URI for a key on this token (carries the pin-source if textual)."""
        pin = str(self._pin_spec) if isinstance(self._pin_spec, EnvPin | FilePin) else None
        return str(Pkcs11URI(token=self.label, object=label, id=key_id, type="private",
                             pin_source=pin))

    def supports(self, key_type: str) -> bool:
        """Whether the token can generate and sign with ``key_type`` (e.g. ``ed25519``)."""
        # Key generation, plus any mechanism Pkcs11Signer can sign that key type with
        # (ADR 0001, "Implementations": openCryptoki has no SHA256-RSA-PKCS, the TPM no PSS).
        needed = {
            "ec": ({Mechanism.EC_KEY_PAIR_GEN}, {Mechanism.ECDSA}),
            "rsa": ({Mechanism.RSA_PKCS_KEY_PAIR_GEN}, {
                Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.RSA_PKCS_PSS,
                Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS,
            }),
            "ed25519": ({Mechanism.EC_EDWARDS_KEY_PAIR_GEN}, {Mechanism.EDDSA}),
        }.get(key_type)
        if needed is None:
            return False
        generate, sign_any = needed

        def op(session: Any) -> bool:
            have = set(session.token.slot.get_mechanisms())
            return generate <= have and bool(sign_any & have)

        return self._run(op, "list mechanisms")

    def generate_keypair(
        self, key_type: str, label: str, *, key_id: bytes | None = None
    ) -> bytes:
        """Generate ``key_type`` (``ec`` P-256, ``rsa`` 2048, ``ed25519``); return CKA_ID."""
        if key_type not in KEY_TYPES:
            raise UnsupportedAlgorithm(
                f"key type {key_type!r} not supported (use one of {', '.join(KEY_TYPES)})"
            )
        ck_id = key_id if key_id is not None else secrets.token_bytes(16)
        # The other capabilities are left to the token at generation and switched off
        # right after (_sign_only): tpm2-pkcs11 refuses a template that asks for
        # CKA_DECRYPT/CKA_ENCRYPT false (its TPM keys are created sign+decrypt) and then
        # leaks a TPM object context (ADR 0001, "Implementations").
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
            **{attr: DEFAULT for attr in _PRIVATE_OFF},
        }
        public_template: dict[Any, Any] = {
            Attribute.VERIFY: True, Attribute.PRIVATE: False,
            **{attr: DEFAULT for attr in _PUBLIC_OFF},
        }
        capabilities = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY

        def op(session: Any) -> bytes:
            if find_objects(session, key_attrs(ObjectClass.PRIVATE_KEY, label, None)):
                raise KeyURIError(f"token {self.label!r} already has a key labelled {label!r}")
            kwargs: dict[str, Any] = dict(
                store=True, label=label, id=ck_id, capabilities=capabilities,
                private_template=private_template,
            )
            if key_type == "ec":
                public_template[Attribute.EC_PARAMS] = encode_named_curve_parameters("secp256r1")
                pair = session.generate_keypair(
                    KeyType.EC, public_template=public_template, **kwargs
                )
            elif key_type == "rsa":
                pair = session.generate_keypair(
                    KeyType.RSA, 2048, public_template=public_template, **kwargs
                )
            else:
                public_template[Attribute.EC_PARAMS] = ObjectIdentifier(ED25519_OID).dump()
                pair = session.generate_keypair(
                    KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    public_template=public_template, **kwargs,
                )
            _sign_only(self.label, label, *pair)
            return ck_id

        return self._run(op, "generate key", key=label)

    def list_keys(self) -> list[KeyInfo]:
        """Private keys on the token, with their public halves when present."""

        def op(session: Any) -> list[KeyInfo]:
            out: list[KeyInfo] = []
            for private in find_objects(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
                ck_id = private[Attribute.ID] or b""
                label = private[Attribute.LABEL] or ""
                pubs = (
                    find_objects(session, key_attrs(ObjectClass.PUBLIC_KEY, None, ck_id))
                    if ck_id else []
                )
                public = public_key_from_object(pubs[0]) if len(pubs) == 1 else None
                raw_type = private[Attribute.KEY_TYPE]
                kt = _KEY_TYPE_NAMES.get(raw_type, str(raw_type))
                out.append(KeyInfo(label=label, id=bytes(ck_id), key_type=kt, public_key=public))
            return out

        return self._run(op, "list keys")

    def public_key(self, *, label: str | None = None, key_id: bytes | None = None) -> PublicKey:
        """The public key (from its CKO_PUBLIC_KEY object) by label and/or CKA_ID."""
        if label is None and key_id is None:
            raise KeyURIError("name the key by label or id")
        name = label if label is not None else (key_id or b"").hex()

        def op(session: Any) -> PublicKey:
            found = find_objects(session, key_attrs(ObjectClass.PUBLIC_KEY, label, key_id))
            obj = one_object(found, name)
            return public_key_from_object(obj)

        return self._run(op, "export public key", key=name)

    def delete(self, *, label: str | None = None, key_id: bytes | None = None) -> int:
        """Destroy every key and certificate object with this label and/or id; return count."""
        if label is None and key_id is None:
            raise KeyURIError("name the key to delete by label or id")
        name = label if label is not None else (key_id or b"").hex()

        def op(session: Any) -> int:
            count = 0
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
                for obj in find_objects(session, key_attrs(cls, label, key_id)):
                    obj.destroy()
                    count += 1
            if count == 0:
                raise p11x.NoSuchKey(name)
            return count

        result = self._run(op, "delete key", key=name)
        shared_session(self.label, self._module_path).clear_handles()
        return result

    def import_certificate(
        self,
        certificate: x509.Certificate,
        *,
        key_id: bytes,
        label: str | None = None,
        replace: bool = False,
    ) -> None:
        """Store an X.509 certificate with the key's CKA_ID (found by Pkcs11Signer).

        A certificate already stored for that CKA_ID is refused (the signer would pick one
        of the two) unless ``replace``, which removes it first.
        """
        der = certificate.public_bytes(serialization.Encoding.DER)

        def op(session: Any) -> None:
            present = find_objects(
                session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id}
            )
            if present and not replace:
                raise KeyURIError(
                    f"token {self.label!r} already holds a certificate for key "
                    f"{label or key_id.hex()!r} (replace it explicitly)"
                )
            for obj in present:
                obj.destroy()
            session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.ID: key_id,
                Attribute.LABEL: label or key_id.hex(),
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.ISSUER: certificate.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(certificate.serial_number),
                Attribute.VALUE: der,
            })

        self._run(op, "import certificate", key=label or key_id.hex())

    def set_pin(self, new_pin: PinSpec, *, old_pin: PinSpec | None = None) -> None:
        """Change the user PIN (C_SetPIN on the logged-in session)."""
        old = resolve_pin(old_pin or self._pin_spec, f"token {self.label!r}")
        new = resolve_pin(new_pin, f"new PIN of token {self.label!r}")

        def op(session: Any) -> None:
            session.set_pin(old, new)

        self._run(op, "set PIN")
        shared_session(self.label, self._module_path).pin_changed(new)


#: Capabilities a generated key pair must not keep (switched off after generation).
_PRIVATE_OFF = (Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE)
_PUBLIC_OFF = (Attribute.ENCRYPT, Attribute.WRAP)


def _sign_only(token: str, label: str, public: Any, private: Any) -> None:
    """Switch off every capability but signing on a new key pair; destroy it if refused."""
    try:
        for obj, attrs in ((private, _PRIVATE_OFF), (public, _PUBLIC_OFF)):
            for attr in attrs:
                try:
                    value = obj[attr]
                except (p11x.AttributeTypeInvalid, p11x.AttributeSensitive):
                    continue  # the token does not know this capability for the key type
                if value:
                    obj[attr] = False
                    if obj[attr]:
                        raise p11x.AttributeReadOnly(attr.name)
    except p11x.PKCS11Error as exc:
        for obj in (private, public):
            with contextlib.suppress(p11x.PKCS11Error):
                obj.destroy()
        raise UnsupportedAlgorithm(
            f"token {token!r} cannot make key {label!r} sign-only "
            f"({type(exc).__name__}); the key pair was destroyed"
        ) from exc


def _der_integer(value: int) -> bytes:
    return bytes(Integer(value).dump())
