"""Signing and verification for sio-gateway.

Public names: :class:`Algorithm`, :class:`Signer`, :class:`Signature`, :func:`key_id_for`,
:func:`load_signer` (backend by key-URI scheme), :func:`verify_signature`,
:class:`SoftwareSigner`, :class:`Pkcs11Signer` and the :mod:`signing.errors` module.

Backends register here: importing the package fills
:data:`signing.registry.SIGNER_FOR_URI_SCHEME` (securesystemslib's pattern), so the
registry and the backends never import each other. Importing this package is light: the
PKCS#11 backend (and python-pkcs11) is imported only when :class:`Pkcs11Signer` is first
touched or a ``pkcs11:`` URI is loaded.

The PKCS#11 backend is four modules: :mod:`signing.modules` (which library to load),
:mod:`signing.pkcs11_session` (module handles, fork safety, one login and a session pool
per token, self-healing), :mod:`signing.pkcs11_keys` (key lookup, public-key export),
:mod:`signing.pkcs11_signer` (:class:`Pkcs11Signer`) and :mod:`signing.pkcs11_token` (key
management, ``Pkcs11Token``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signing import errors
from signing.api import Algorithm, Signature, Signer, key_id_for
from signing.certfile import CertificateSpec
from signing.pins import PinSpec
from signing.registry import SIGNER_FOR_URI_SCHEME, load_signer
from signing.software import SoftwareSigner, generate_software_key
from signing.verify import verify_signature

if TYPE_CHECKING:
    from signing.pkcs11_signer import Pkcs11Signer

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


def _pkcs11_from_key_uri(
    uri: str,
    *,
    pin_source: PinSpec | None,
    certificate: CertificateSpec,
    algorithm: Algorithm | None,
    sessions: int | None,
) -> Signer:
    # Deferred: python-pkcs11 loads only when the first pkcs11: key is used.
    from signing.pkcs11_signer import Pkcs11Signer

    return Pkcs11Signer.from_key_uri(uri, pin_source=pin_source, certificate=certificate,
                                     algorithm=algorithm, sessions=sessions)


SIGNER_FOR_URI_SCHEME.update({
    "file": SoftwareSigner.from_key_uri,
    "software": SoftwareSigner.from_key_uri,
    "pkcs11": _pkcs11_from_key_uri,
})


def __getattr__(name: str) -> Any:
    if name == "Pkcs11Signer":
        # Deferred: python-pkcs11 loads only when Pkcs11Signer is first touched.
        from signing.pkcs11_signer import Pkcs11Signer

        return Pkcs11Signer
    raise AttributeError(f"module 'signing' has no attribute {name!r}")
