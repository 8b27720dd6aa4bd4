"""Choosing a signing backend by the scheme of a key URI.

``pkcs11:`` (RFC 7512) → :class:`signing.pkcs11_backend.Pkcs11Signer`;
``file:``/``software:`` → :class:`signing.software.SoftwareSigner` (tests and CA tooling
only). Backends are imported when first used, so importing :mod:`signing` never loads
PKCS#11.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from signing.api import Algorithm, Signer
from signing.errors import KeyURIError
from signing.pins import PinSpec, resolve_pin
from signing.uri import Pkcs11URI, SoftwareKeyURI, parse_key_uri
from signing.verify import coerce_algorithm
from siogw_api.errors import TrustError

CertificateSpec = x509.Certificate | Path | str | None
#: A backend factory: (uri text, pin source, certificate, algorithm) -> Signer.
SignerFactory = Callable[[str, PinSpec | None, CertificateSpec, Algorithm | None], Signer]

_FACTORIES: dict[str, SignerFactory] = {}


def register_scheme(scheme: str, factory: SignerFactory) -> None:
    """Add a backend for a key URI scheme (replaces any earlier one)."""
    _FACTORIES[scheme.lower()] = factory


def load_certificate(spec: CertificateSpec) -> x509.Certificate | None:
    """A certificate from an object, or a PEM/DER file path."""
    if spec is None or isinstance(spec, x509.Certificate):
        return spec
    try:
        data = Path(spec).read_bytes()
    except OSError as exc:
        raise KeyURIError(f"cannot read certificate file {spec}", detail=exc.strerror) from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TrustError(f"certificate file {spec} is not a valid certificate") from exc


def _software(
    uri: str, pin_source: PinSpec | None, certificate: CertificateSpec, algorithm: Algorithm | None
) -> Signer:
    from signing.software import SoftwareSigner

    parsed = parse_key_uri(uri)
    assert isinstance(parsed, SoftwareKeyURI)
    spec = pin_source if pin_source is not None else parsed.pin_source
    password = resolve_pin(spec, f"key file {parsed.path}") if spec is not None else None
    return SoftwareSigner.from_pem_file(
        parsed.path, password=password, algorithm=algorithm,
        certificate=load_certificate(certificate),
    )


def _pkcs11(
    uri: str, pin_source: PinSpec | None, certificate: CertificateSpec, algorithm: Algorithm | None
) -> Signer:
    from signing.pkcs11_backend import Pkcs11Signer

    parsed = parse_key_uri(uri)
    assert isinstance(parsed, Pkcs11URI)
    return Pkcs11Signer(parsed, pin_source=pin_source, certificate=certificate, algorithm=algorithm)


register_scheme("file", _software)
register_scheme("software", _software)
register_scheme("pkcs11", _pkcs11)


def load_signer(
    uri: str,
    *,
    pin_source: PinSpec | None = None,
    certificate: CertificateSpec = None,
    algorithm: Algorithm | str | None = None,
) -> Signer:
    """A :class:`Signer` for the key ``uri`` names.

    ``pin_source`` (``env:VAR``, ``file:/path``, a callback) overrides the URI's
    ``pin-source``. ``certificate`` is a certificate or a PEM/DER path. ``algorithm``
    picks RSA padding (default RSA-PSS); EC and Ed25519 keys have one algorithm.
    """
    if not isinstance(uri, str) or ":" not in uri:
        raise KeyURIError("key URI has no scheme (expected pkcs11:, file: or software:)")
    scheme = uri.partition(":")[0].lower()
    factory = _FACTORIES.get(scheme)
    if factory is None:
        raise KeyURIError(
            f"unknown key URI scheme {scheme!r}",
            detail="known: " + ", ".join(sorted(_FACTORIES)),
        )
    alg = coerce_algorithm(algorithm) if algorithm is not None else None
    return factory(uri, pin_source, certificate, alg)
