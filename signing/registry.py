"""Choosing a signing backend by the scheme of a key URI.

This module declares the table, :data:`SIGNER_FOR_URI_SCHEME` (scheme -> factory), and
:func:`load_signer`; it imports no backend. :mod:`signing` fills the table when the
package is imported (securesystemslib's pattern), so the registry and the backends never
import each other:

* ``pkcs11:`` (RFC 7512) -> :meth:`signing.pkcs11_signer.Pkcs11Signer.from_key_uri`
  (python-pkcs11 is imported when the first such key is loaded);
* ``file:``/``software:`` -> :meth:`signing.software.SoftwareSigner.from_key_uri`
  (tests and CA tooling only).
"""

from __future__ import annotations

from typing import Protocol

from signing.api import Algorithm, Signer
from signing.certfile import CertificateSpec
from signing.errors import KeyURIError
from signing.pins import PinSpec
from signing.verify import coerce_algorithm


class SignerFactory(Protocol):
    """Builds the :class:`Signer` for one key URI of its scheme."""

    def __call__(
        self,
        uri: str,
        *,
        pin_source: PinSpec | None,
        certificate: CertificateSpec,
        algorithm: Algorithm | None,
        sessions: int | None,
    ) -> Signer: ...


#: Key URI scheme (lowercase) -> backend factory; filled by :mod:`signing`.
SIGNER_FOR_URI_SCHEME: dict[str, SignerFactory] = {}


def load_signer(
    uri: str,
    *,
    pin_source: PinSpec | None = None,
    certificate: CertificateSpec = None,
    algorithm: Algorithm | str | None = None,
    sessions: int | None = None,
) -> Signer:
    """A :class:`Signer` for the key ``uri`` names.

    ``pin_source`` (``env:VAR``, ``file:/path``, a callback) overrides the URI's
    ``pin-source``. ``certificate`` is a certificate or a PEM/DER path. ``algorithm``
    picks RSA padding (default RSA-PSS); EC and Ed25519 keys have one algorithm.
    ``sessions`` bounds the PKCS#11 session pool of the key's token (>= 1; default the
    CPU count); software keys ignore it.

    Raises :class:`~signing.errors.KeyURIError` for a missing or unknown scheme,
    :class:`~siogw_api.errors.ConfigError` for ``sessions`` < 1, and the backend's
    errors (token, key, PIN) as :mod:`signing.errors` classes.
    """
    if not isinstance(uri, str) or ":" not in uri:
        raise KeyURIError("key URI has no scheme (expected pkcs11:, file: or software:)")
    scheme = uri.partition(":")[0].lower()
    factory = SIGNER_FOR_URI_SCHEME.get(scheme)
    if factory is None:
        raise KeyURIError(
            f"unknown key URI scheme {scheme!r}",
            detail="known: " + ", ".join(sorted(SIGNER_FOR_URI_SCHEME)),
        )
    alg = coerce_algorithm(algorithm) if algorithm is not None else None
    return factory(uri, pin_source=pin_source, certificate=certificate, algorithm=alg,
                   sessions=sessions)
