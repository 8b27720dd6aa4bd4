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
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

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
    *,
    grace: _dt.timedelta = _dt.timedelta(0),
) -> None:
    """Check that ``crl`` is usable for ``issuer``'s certificates at time ``at``.

    The CRL must name ``issuer`` as its issuer, carry a signature by the issuer's key,
    and be current: ``thisUpdate <= at <= nextUpdate + grace`` (``grace``: the
    ``[crl] grace`` setting, 0 by default). A CRL without nextUpdate is treated as stale
    (RFC 5280 §5.1.2.5 requires the field). Every failure is :class:`StaleCRL` with the
    precise reason.
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
    if at > next_update + grace:
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


# --- CRLs fetched from distribution points (ADR 0002, 11) ----------------------------------
#: Distribution points read from one certificate at most (the rest are ignored).
MAX_POINTS_PER_CERTIFICATE = 4
#: Longest distribution-point URI used.
MAX_POINT_URI_LENGTH = 2048
#: Largest CRL accepted from a distribution point or the cache, in bytes.
MAX_FETCHED_CRL_BYTES = 16 * 1024 * 1024


def http_distribution_points(cert: x509.Certificate) -> tuple[str, ...]:
    """The ``http``/``https`` URIs of ``cert``'s cRLDistributionPoints (RFC 5280 §4.2.1.13).

    They name where the CRL covering ``cert`` -- its *issuer's* CRL -- is published.
    Only full names are read; a point limited to some reasons or published by another
    CRL issuer (an indirect CRL, which the trust store refuses anyway) is skipped, as is
    any other URI scheme (LDAP, file) and a URI longer than :data:`MAX_POINT_URI_LENGTH`.
    At most :data:`MAX_POINTS_PER_CERTIFICATE` are returned, in the certificate's order,
    without duplicates. A malformed extension gives none.
    """
    try:
        ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError:  # cryptography parses extensions lazily
        return ()
    out: list[str] = []
    for point in ext:
        if point.reasons or point.crl_issuer or not point.full_name:
            continue
        for name in point.full_name:
            if not isinstance(name, x509.UniformResourceIdentifier):
                continue
            uri = name.value
            if len(uri) > MAX_POINT_URI_LENGTH or not _is_http_uri(uri) or uri in out:
                continue
            out.append(uri)
            if len(out) >= MAX_POINTS_PER_CERTIFICATE:
                return tuple(out)
    return tuple(out)


def _is_http_uri(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and \
        uri.isascii() and uri.isprintable() and " " not in uri


def parse_fetched_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL as a distribution point or the cache gives it: DER (RFC 5280 §4.2.1.13) or
    PEM, at most :data:`MAX_FETCHED_CRL_BYTES`; :class:`InputError` for anything else."""
    if len(data) > MAX_FETCHED_CRL_BYTES:
        raise InputError(f"a CRL of more than {MAX_FETCHED_CRL_BYTES} bytes is refused")
    if not data:
        raise InputError("an empty answer is not a CRL")
    crl = load_crl(data)
    try:  # fields are decoded lazily: every one the checks read is read here
        crl.last_update_utc  # noqa: B018
        crl.next_update_utc  # noqa: B018
        crl.issuer.rfc4514_string()
        list(crl.extensions)
    except ValueError as exc:
        raise InputError("not a well-formed X.509 CRL", detail=str(exc)) from exc
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    """The CRL's cRLNumber, None without one."""
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return None


def check_published_crl(
    crl: x509.CertificateRevocationList,
    issuer: x509.Certificate,
    *,
    now: _dt.datetime,
    max_skew: _dt.timedelta = _dt.timedelta(minutes=5),
) -> None:
    """:class:`StaleCRL` unless ``crl`` is a complete CRL genuinely of ``issuer``.

    What a CRL fetched from a distribution point (or read back from the cache) must be
    before it replaces anything: issued under ``issuer``'s name, signed by its key, not a
    delta CRL and without a critical extension the trust store cannot honour, with a
    nextUpdate, and not dated in the future (more than ``max_skew`` after ``now``).
    Whether it is still current is not checked here: a CRL past its nextUpdate is kept
    (the freshest the CA publishes) and goes stale in the trust store.
    """
    who = issuer.subject.rfc4514_string()
    if crl.issuer != issuer.subject:
        raise StaleCRL(f"the CRL is issued by {crl.issuer.rfc4514_string()}, not {who}")
    for ext in crl.extensions:
        if ext.oid == x509.DeltaCRLIndicator.oid:
            raise StaleCRL(f"CRL of {who} is a delta CRL; a complete CRL is needed")
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            raise StaleCRL(
                f"CRL of {who} has an unsupported critical extension {ext.oid.dotted_string}"
            )
    try:
        valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise StaleCRL(f"CRL of {who} has an unverifiable signature", detail=str(exc)) from exc
    if not valid:
        raise StaleCRL(f"CRL of {who}: signature does not verify with the issuer's key")
    if crl.next_update_utc is None:
        raise StaleCRL(f"CRL of {who} has no nextUpdate")
    if crl.last_update_utc > ensure_utc(now) + max_skew:
        raise StaleCRL(
            f"CRL of {who} is dated in the future: thisUpdate {astana_iso(crl.last_update_utc)}"
        )


def is_newer_crl(
    new: x509.CertificateRevocationList, old: x509.CertificateRevocationList
) -> bool:
    """Whether ``new`` replaces ``old`` (two CRLs of one issuer, both checked).

    False when they are the same CRL (byte for byte): nothing to do. :class:`StaleCRL`
    when ``new`` is not newer -- an earlier thisUpdate, a cRLNumber not above the old one
    (RFC 5280 §5.2.3: numbers increase), or, without numbers, the same thisUpdate with
    other content: a replayed or forged "update" never replaces a newer CRL.
    """
    if new.public_bytes(serialization.Encoding.DER) == old.public_bytes(
        serialization.Encoding.DER
    ):
        return False
    who = old.issuer.rfc4514_string()
    if new.last_update_utc < old.last_update_utc:
        raise StaleCRL(
            f"CRL of {who} is older than the one kept: thisUpdate "
            f"{astana_iso(new.last_update_utc)} before {astana_iso(old.last_update_utc)}"
        )
    new_no, old_no = crl_number(new), crl_number(old)
    if new_no is not None and old_no is not None:
        if new_no <= old_no:
            raise StaleCRL(
                f"CRL of {who} has cRLNumber {new_no}, not above the {old_no} of the one kept"
            )
        return True
    if old_no is not None and new_no is None:
        raise StaleCRL(f"CRL of {who} has no cRLNumber where the one kept has {old_no}")
    if new.last_update_utc == old.last_update_utc:
        raise StaleCRL(f"CRL of {who} differs from the one kept but is not newer")
    return True
