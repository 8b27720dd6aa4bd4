"""The certificate a caller hands to a signer: an object, or a PEM/DER file path."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from signing.errors import KeyURIError
from siogw_api.errors import TrustError

#: A certificate, a PEM/DER file path, or ``None`` (none given).
CertificateSpec = x509.Certificate | Path | str | None


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
    except (ValueError, x509.InvalidVersion) as exc:
        raise TrustError(f"certificate file {spec} is not a valid certificate") from exc
