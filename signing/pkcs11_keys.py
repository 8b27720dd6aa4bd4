"""PKCS#11 key lookup and public-key export (python-pkcs11 objects -> ``cryptography`` keys).

Helpers over one open session: :func:`find_objects` (search, exhausted at once),
:func:`key_attrs` (a search template by class, label and CKA_ID), :func:`one_object`
(exactly one match, else ``NoSuchKey``/``MultipleObjectsReturned``, which
:func:`signing.pkcs11_session.wrap_error` turns into :class:`~signing.errors.KeyNotFound`),
and :func:`public_key_from_object` (RSA, EC P-256 and Ed25519 public key objects; an RSA
private key object carries its public half too).
"""

from __future__ import annotations

from typing import Any

from asn1crypto.core import OctetString
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_ec_public_key

from signing.api import PublicKey
from signing.errors import UnsupportedAlgorithm


def _ec_point_bytes(raw: bytes) -> bytes:
    """EC_POINT is a DER OCTET STRING per the standard; some modules give it bare."""
    try:
        parsed = OctetString.load(raw)
        return bytes(parsed.native)
    except (ValueError, TypeError):
        return raw


def public_key_from_object(obj: Any) -> PublicKey:
    """A ``cryptography`` public key from a PKCS#11 public key object."""
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        n = int.from_bytes(obj[Attribute.MODULUS], "big")
        e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key_type == KeyType.EC:
        key = serialization.load_der_public_key(encode_ec_public_key(obj))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key
    if key_type == KeyType.EC_EDWARDS:
        return ed25519.Ed25519PublicKey.from_public_bytes(
            _ec_point_bytes(obj[Attribute.EC_POINT])
        )
    raise UnsupportedAlgorithm(f"unsupported PKCS#11 key type {key_type!r}")


def find_objects(session: Any, attrs: dict[Any, Any]) -> list[Any]:
    """Every object of ``session`` matching ``attrs``."""
    # list() exhausts the search so python-pkcs11 releases its session lock at once.
    return list(session.get_objects(attrs))


def key_attrs(cls: ObjectClass, label: str | None, key_id: bytes | None) -> dict[Any, Any]:
    """A search template: object class, and the label and/or CKA_ID when given."""
    attrs: dict[Any, Any] = {Attribute.CLASS: cls}
    if label is not None:
        attrs[Attribute.LABEL] = label
    if key_id is not None:
        attrs[Attribute.ID] = key_id
    return attrs


def one_object(objs: list[Any], what: str) -> Any:
    """The single object of ``objs`` (python-pkcs11's NoSuchKey / MultipleObjectsReturned)."""
    if not objs:
        raise p11x.NoSuchKey(what)
    if len(objs) > 1:
        raise p11x.MultipleObjectsReturned(what)
    return objs[0]
