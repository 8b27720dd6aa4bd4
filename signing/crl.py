"""Certificate revocation lists: parse, check against the issuer, look up a serial.

Pure functions over bytes and ``cryptography`` objects; no I/O. Used by
:mod:`signing.trust`; the CA writes CRLs in :mod:`signing.ca`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from cryptography import x509

from signing.errors import StaleCRL
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso, ensure_utc


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """Parse a CRL in PEM or DER; :class:`InputError` if it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError("not a PEM or DER X.509 CRL", detail=str(exc)) from exc


@dataclass(frozen=True)
class CRLRevocation:
    """A serial found on a CRL."""

    serial: int
    revoked_at: _dt.datetime
    reason: str


def check_crl(
    crl: x509.CertificateRevocationList,
    issuer: x509.Certificate,
    at: _dt.datetime,
) -> None:
    """Check that ``crl`` is usable for ``issuer``'s certificates at time ``at``.

    The CRL must name ``issuer`` as its issuer, carry a signature by the issuer's key,
    and be current: ``thisUpdate <= at <= nextUpdate``. A CRL without nextUpdate is
    treated as stale (RFC 5280 §5.1.2.5 requires the field). Every failure is
    :class:`StaleCRL` with the precise reason.
    """
    who = issuer.subject.rfc4514_string()
    if crl.issuer != issuer.subject:
        raise StaleCRL(f"CRL issuer {crl.issuer.rfc4514_string()} is not {who}")
    try:
        valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise StaleCRL(f"CRL of {who} has an unverifiable signature", detail=str(exc)) from exc
    if not valid:
        raise StaleCRL(f"CRL of {who}: signature does not verify with the issuer's key")
    at = ensure_utc(at)
    this_update = crl.last_update_utc
    if at < this_update:
        raise StaleCRL(f"CRL of {who} is not yet valid: thisUpdate {astana_iso(this_update)}")
    next_update = crl.next_update_utc
    if next_update is None:
        raise StaleCRL(f"CRL of {who} has no nextUpdate")
    if at > next_update:
        raise StaleCRL(
            f"CRL of {who} is stale: nextUpdate {astana_iso(next_update)} "
            f"is before the check time {astana_iso(at)}"
        )


def find_revocation(crl: x509.CertificateRevocationList, serial: int) -> CRLRevocation | None:
    """The entry for ``serial`` on ``crl`` (reason ``unspecified`` without a reason code)."""
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    if entry is None:
        return None
    reason = "unspecified"
    try:
        ext = entry.extensions.get_extension_for_class(x509.CRLReason)
        reason = ext.value.reason.value
    except x509.ExtensionNotFound:
        pass
    return CRLRevocation(serial=serial, revoked_at=entry.revocation_date_utc, reason=reason)
