"""Certificate revocation lists: parse, check against the issuer, look up a serial.

Pure functions over bytes and ``cryptography`` objects; no I/O. Used by
:mod:`signing.trust`; the CA writes CRLs in :mod:`signing.ca`.

Critical CRL extensions are honoured or the CRL is refused (``StaleCRL``): a delta CRL
(deltaCRLIndicator) is refused, since it is not a complete list; an
issuingDistributionPoint that limits the CRL to CA or end-entity certificates or to one
distribution point is honoured by :func:`covers` (a CRL that does not cover a certificate
says nothing about it); one that is indirect, reason-partitioned, attribute-only or
names its point by a relative name is refused, as is any other critical extension, on
the CRL or on the entry found for a serial.
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
    except ValueError as exc:
        raise InputError("not a PEM or DER X.509 CRL", detail=str(exc)) from exc


_UNDERSTOOD_CRITICAL = {
    x509.CRLNumber.oid,
    x509.AuthorityKeyIdentifier.oid,
    x509.IssuingDistributionPoint.oid,  # honoured by covers()
}


def covers(crl: x509.CertificateRevocationList, cert: x509.Certificate, *, is_ca: bool) -> bool:
    """Whether ``crl``'s scope (issuingDistributionPoint) includes ``cert``.

    Without the extension a CRL covers every certificate of its issuer. A scope this
    module cannot honour raises :class:`StaleCRL` (see the module docstring).
    """
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    who = crl.issuer.rfc4514_string()
    if idp.indirect_crl or idp.only_some_reasons or idp.only_contains_attribute_certs:
        raise StaleCRL(f"CRL of {who} has an unsupported scope (indirect, "
                       "reason-partitioned or attribute certificates)")
    if idp.relative_name is not None:
        raise StaleCRL(f"CRL of {who} names its distribution point by a relative name")
    if idp.only_contains_ca_certs and not is_ca:
        return False
    if idp.only_contains_user_certs and is_ca:
        return False
    if idp.full_name:
        try:
            points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            return False
        wanted = set(idp.full_name)
        return any(dp.full_name and wanted & set(dp.full_name) for dp in points)
    return True


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
    for ext in crl.extensions:
        if ext.oid == x509.DeltaCRLIndicator.oid:
            raise StaleCRL(f"CRL of {who} is a delta CRL; a complete CRL is needed")
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            raise StaleCRL(
                f"CRL of {who} has an unsupported critical extension {ext.oid.dotted_string}"
            )
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
    for ext in entry.extensions:
        if ext.critical and ext.oid not in (x509.CRLReason.oid, x509.InvalidityDate.oid):
            raise StaleCRL(
                f"CRL of {crl.issuer.rfc4514_string()}: the entry for serial 0x{serial:x} "
                f"has an unsupported critical extension {ext.oid.dotted_string}"
            )
    reason = "unspecified"
    try:
        ext = entry.extensions.get_extension_for_class(x509.CRLReason)
        reason = ext.value.reason.value
    except x509.ExtensionNotFound:
        pass
    return CRLRevocation(serial=serial, revoked_at=entry.revocation_date_utc, reason=reason)
