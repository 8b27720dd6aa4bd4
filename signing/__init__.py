"""Signing and verification for sio-gateway.

Public names: :class:`Algorithm`, :class:`Signer`, :class:`Signature`, :func:`key_id_for`,
:func:`load_signer` (backend by key-URI scheme), :func:`verify_signature`,
:class:`SoftwareSigner`, :class:`Pkcs11Signer` and the :mod:`signing.errors` module.

Importing this package is light: the PKCS#11 backend (and python-pkcs11) is imported
only when :class:`Pkcs11Signer` is first touched or a ``pkcs11:`` URI is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signing import errors
from signing.api import Algorithm, Signature, Signer, key_id_for
from signing.registry import load_signer
from signing.software import SoftwareSigner, generate_software_key
from signing.verify import verify_signature

if TYPE_CHECKING:
    from signing.pkcs11_backend import Pkcs11Signer

__all__ = [
    "Algorithm",
    "Pkcs11Signer",
    "Signature",
    "Signer",
    "SoftwareSigner",
    "errors",
    "generate_software_key",
    "key_id_for",
    "load_signer",
    "verify_signature",
]


def __getattr__(name: str) -> Any:
    if name == "Pkcs11Signer":
        from signing.pkcs11_backend import Pkcs11Signer

        return Pkcs11Signer
    raise AttributeError(f"module 'signing' has no attribute {name!r}")
