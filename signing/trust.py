"""Trust decisions: certificate paths, revocation, and signatures by certified keys.

Everything here is pure verification over bytes and ``cryptography`` objects: no files,
no network, no database. The caller supplies the trust anchors, intermediates, CRLs, a
:class:`~signing.revocation.RevocationStore` and a clock; loading them is the caller's
job (``signing.cli`` reads files, the server reads its DB).

Path validation is a small explicit builder rather than
``cryptography.x509.verification.PolicyBuilder``, which only knows the TLS server/client
profiles (it demands serverAuth/clientAuth EKUs and SANs that signing certificates do not
have); see ``docs/adr/0002-trust-and-revocation.md``. The checks, in order, for a path
``leaf -> [intermediate ->] anchor``:

1. Build: each certificate's issuer name equals the next one's subject and its signature
   verifies with the next one's key; the last is a configured anchor (``UntrustedChain``).
2. No certificate in the path has a critical extension we do not process; the issuers'
   nameConstraints are applied to every certificate below them (directoryName against
   the subject and SAN directory names, dNSName, rfc822Name, iPAddress; a constraint of
   any other name form refuses the path). Critical policyConstraints, inhibitAnyPolicy
   and policyMappings are refused: this store does no RFC 5280 policy processing, so a
   CA that demands it cannot be honoured (``UntrustedChain``).
3. Revocation of every non-anchor certificate: the gateway's own store first (entries
   take effect at once), then the freshest CRL of its issuer, whose signature and
   freshness are checked (``CertificateRevoked``, ``StaleCRL``).
4. Validity of every certificate at the check time (``CertificateExpired``).
5. Issuers are CAs: basicConstraints ``CA:TRUE``, ``pathLenConstraint`` respected,
   keyUsage ``keyCertSign`` (``UntrustedChain`` / ``KeyUsageRefused``).
6. The leaf's keyUsage has digitalSignature or nonRepudiation, and its extended key
   usage fits the purpose (``KeyUsageRefused``): for a person's signature (the default)
   an EKU made only of TLS purposes, or one naming :data:`GATEWAY_RESULT_EKU`, is
   refused; for an expected purpose (``purpose=OID``, e.g. the gateway's results) the EKU
   must be present and name exactly that OID (anyExtendedKeyUsage does not count).

:class:`TrustChecker` is what a consumer needs of a trust store (the operations domain
takes one); the server hands out a live view that follows CRL changes
(``server.certcheck.TrustMaterial.live``).

All times in messages are Astana time (R9).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from signing.api import (
    Algorithm,
    PublicKey,
    certificate_key_id,
    certificate_public_key,
    key_id_for,
)
from signing.crl import check_crl, covers, find_revocation
from signing.dsse import EnvSig, VerifiedSigner
from signing.errors import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    CRLUnavailable,
    KeyUsageRefused,
    StaleCRL,
    UnknownSigner,
    UntrustedChain,
)
from signing.revocation import COMPROMISE_REASONS, RevocationStore
from signing.verify import verify_with_key
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso, ensure_utc, now_utc

#: Longest path accepted, anchor included (root -> intermediate -> intermediate -> leaf).
MAX_PATH_LENGTH = 4

Clock = Callable[[], _dt.datetime]

#: Extended key usage of the gateway's result-signing certificate. A UUID-derived OID
#: (ITU-T X.667 arc ``2.25``): needs no registration and collides with no one's.
#: ``signing.ca`` issues it with the ``gateway`` profile; ``siogw verify`` expects it
#: for result envelopes. A person's signature is refused from a certificate naming it.
GATEWAY_RESULT_EKU = x509.ObjectIdentifier("2.25.206522888775441236200573834490305489719")

#: EKUs that only authorise a TLS endpoint: a leaf whose EKU is made of these alone is not
#: a signing certificate.
_TLS_ONLY_EKUS = frozenset(
    {x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH}
)


class CRLSource(Protocol):
    """CRLs the store does not hold itself: those fetched from distribution points
    (``server.crlfetch.CRLFetcher``). Called for every revocation check of ``cert``
    (issued by ``issuer``) with the CRLs of ``issuer`` it has, ``[]`` when it manages
    none; raises :class:`~signing.errors.CRLUnavailable` when it manages that issuer's
    CRL but has none usable at ``at`` (fail closed)."""

    def __call__(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: _dt.datetime
    ) -> Sequence[x509.CertificateRevocationList]: ...


class TrustChecker(Protocol):
    """What a consumer needs of a trust store: :class:`TrustStore` or a live view of one."""

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]: ...

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]: ...

    def verify_certificate(
        self,
        leaf: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]: ...

    def verify_signed(
        self,
        payload: bytes,
        signature: bytes,
        cert: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        algorithm: Algorithm | None = None,
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]: ...


def describe(cert: x509.Certificate) -> str:
    """``CN=...,O=... (serial 0x1f)`` — how messages name a certificate."""
    return f"{cert.subject.rfc4514_string()} (serial 0x{cert.serial_number:x})"


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Parse one DER certificate or a PEM bundle of one or more; :class:`InputError` else."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError("not a PEM or DER X.509 certificate", detail=str(exc)) from exc
    return certs


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


_UNDERSTOOD_CRITICAL = {
    x509.BasicConstraints.oid,
    x509.KeyUsage.oid,
    x509.ExtendedKeyUsage.oid,
    x509.SubjectAlternativeName.oid,
    x509.NameConstraints.oid,  # applied, see _check_name_constraints
    # Without a required policy set every policy satisfies us; a CA that demands policy
    # processing says so with policyConstraints/inhibitAnyPolicy, which are refused.
    x509.CertificatePolicies.oid,
}

#: Critical extensions refused with a specific reason (policy processing is not done).
_POLICY_PROCESSING = {
    x509.PolicyConstraints.oid: "policyConstraints",
    x509.InhibitAnyPolicy.oid: "inhibitAnyPolicy",
    x509.oid.ExtensionOID.POLICY_MAPPINGS: "policyMappings",
}


class TrustStore:
    """Trust anchors + intermediates + CRLs + the gateway's revocation store + a clock.

    Immutable after construction except through the revocation store, which is consulted
    on every check so that its entries take effect at once.
    """

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        crls: Sequence[x509.CertificateRevocationList] = (),
        revocations: RevocationStore | None = None,
        clock: Clock = now_utc,
        *,
        require_crl: bool = False,
        crl_grace: _dt.timedelta = _dt.timedelta(0),
        crl_source: CRLSource | None = None,
    ) -> None:
        if not anchors:
            raise InputError("a trust store needs at least one trust anchor")
        self.anchors: tuple[x509.Certificate, ...] = tuple(anchors)
        self.intermediates: tuple[x509.Certificate, ...] = tuple(intermediates)
        self.crls: tuple[x509.CertificateRevocationList, ...] = tuple(crls)
        self.revocations = revocations
        self.clock = clock
        self.require_crl = require_crl
        #: How long past its nextUpdate a CRL is still used (``[crl] grace``; 0: none).
        self.crl_grace = crl_grace
        #: Fetched CRLs, asked on every revocation check (see :class:`CRLSource`).
        self.crl_source = crl_source

    # -- path building ------------------------------------------------------------------
    def _build_path(
        self, leaf: x509.Certificate, extra: Iterable[x509.Certificate]
    ) -> list[x509.Certificate]:
        pool = list(self.intermediates) + list(extra)
        path = [leaf]
        current = leaf
        while len(path) <= MAX_PATH_LENGTH:
            if current in self.anchors:
                return path  # the certificate is itself a configured anchor
            bad_link: x509.Certificate | None = None
            for anchor in self.anchors:
                if anchor.subject == current.issuer:
                    if _issued_by(current, anchor):
                        return [*path, anchor]
                    bad_link = anchor
            nxt = None
            for cand in pool:
                if cand.subject == current.issuer and cand not in path:
                    if _issued_by(current, cand):
                        nxt = cand
                        break
                    bad_link = cand
            if nxt is None:
                if bad_link is not None:
                    raise UntrustedChain(
                        f"signature on {describe(current)} does not verify with the key of "
                        f"its issuer {describe(bad_link)}"
                    )
                raise UntrustedChain(
                    f"{describe(current)} was issued by {current.issuer.rfc4514_string()}, "
                    "which is neither a trust anchor nor a known intermediate"
                )
            path.append(nxt)
            current = nxt
        raise UntrustedChain(f"no path to a trust anchor within {MAX_PATH_LENGTH} certificates")

    # -- revocation ---------------------------------------------------------------------
    def _check_revocation(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: _dt.datetime
    ) -> None:
        if self.revocations is not None:
            entry = self.revocations.lookup(cert.issuer, cert.serial_number)
            if entry is not None and entry.applies_at(at):
                raise CertificateRevoked(
                    f"certificate {describe(cert)}",
                    revoked_at=entry.revoked_at,
                    revocation_reason=entry.reason,
                    serial=cert.serial_number,
                    detail="gateway revocation list",
                )
        candidates = [c for c in self.crls if c.issuer == issuer.subject]
        fetched: list[x509.CertificateRevocationList] = []
        if self.crl_source is not None:
            fetched = [c for c in self.crl_source(cert, issuer, at)
                       if c.issuer == issuer.subject]
            candidates += fetched
        if not candidates:
            if self.require_crl:
                raise StaleCRL(f"no CRL of {issuer.subject.rfc4514_string()} is configured")
            return
        # The freshest CRL that is genuinely the issuer's; a forged "newer" one must not
        # hide a good one. If none verifies, the freshest one's error is reported.
        candidates.sort(key=lambda c: c.last_update_utc, reverse=True)
        genuine = [c for c in candidates if _crl_signed_by(c, issuer)]
        if genuine:
            # A CRL's issuingDistributionPoint may limit it to CA or end-entity
            # certificates or to one distribution point: only a CRL covering ``cert``
            # can say it is not revoked (an unsupported scope raises StaleCRL).
            is_ca = _is_ca(cert)
            genuine = [c for c in genuine if covers(c, cert, is_ca=is_ca)]
            if not genuine:
                if fetched:  # an issuer with a distribution point must have a CRL for it
                    raise CRLUnavailable(
                        f"no CRL of {issuer.subject.rfc4514_string()} fetched from its "
                        f"distribution point covers {describe(cert)}"
                    )
                if self.require_crl:
                    raise StaleCRL(
                        f"no CRL of {issuer.subject.rfc4514_string()} covers {describe(cert)}"
                    )
                return
        crl = genuine[0] if genuine else candidates[0]
        check_crl(crl, issuer, at, grace=self.crl_grace)
        hit = find_revocation(crl, cert.serial_number)
        if hit is not None and (
            hit.reason in COMPROMISE_REASONS or ensure_utc(hit.revoked_at) <= at
        ):
            raise CertificateRevoked(
                f"certificate {describe(cert)}",
                revoked_at=hit.revoked_at,
                revocation_reason=hit.reason,
                serial=cert.serial_number,
                detail="CRL",
            )

    # -- the checks ---------------------------------------------------------------------
    def verify_certificate(
        self,
        leaf: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Validate ``leaf`` for signing at ``at`` (default: the clock's now).

        ``purpose`` is the EKU the leaf must name (None: a person's signature, see step 6
        of the module docstring). Returns the path, leaf first, anchor last. Raises
        :class:`UntrustedChain`, :class:`CertificateRevoked`, :class:`StaleCRL`,
        :class:`CertificateExpired` or :class:`KeyUsageRefused` (checked in that order).
        """
        when = ensure_utc(at) if at is not None else ensure_utc(self.clock())
        try:
            return self._verify_certificate(leaf, when, intermediates, purpose)
        except ValueError as exc:  # cryptography parses extensions lazily
            raise UntrustedChain(
                f"certificate {describe(leaf)} or its chain is malformed", detail=str(exc)
            ) from exc

    def _verify_certificate(
        self,
        leaf: x509.Certificate,
        when: _dt.datetime,
        intermediates: Iterable[x509.Certificate],
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        path = self._build_path(leaf, intermediates)

        for cert in path:  # step 2
            for ext in cert.extensions:
                if ext.critical and ext.oid in _POLICY_PROCESSING:
                    raise UntrustedChain(
                        f"{describe(cert)} has a critical {_POLICY_PROCESSING[ext.oid]} "
                        "extension; certificate policy processing is not supported"
                    )
                if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
                    raise UntrustedChain(
                        f"{describe(cert)} has an unsupported critical extension "
                        f"{ext.oid.dotted_string}"
                    )
        _check_name_constraints(path)

        for i in range(len(path) - 1):  # step 3, anchors are not revocation-checked
            self._check_revocation(path[i], path[i + 1], when)

        for cert in path:  # step 4
            if when < cert.not_valid_before_utc:
                raise CertificateExpired(
                    f"certificate {describe(cert)} is not yet valid: valid from "
                    f"{astana_iso(cert.not_valid_before_utc)}, checked at {astana_iso(when)}"
                )
            if when > cert.not_valid_after_utc:
                raise CertificateExpired(
                    f"certificate {describe(cert)} expired at "
                    f"{astana_iso(cert.not_valid_after_utc)}, checked at {astana_iso(when)}"
                )

        for depth, issuer in enumerate(path[1:]):  # step 5
            self._check_ca(issuer, intermediates_below=depth)

        _check_signing_usage(leaf, purpose)  # step 6
        return tuple(path)

    @staticmethod
    def _check_ca(cert: x509.Certificate, *, intermediates_below: int) -> None:
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise UntrustedChain(f"issuer {describe(cert)} has no basicConstraints") from None
        if not bc.ca:
            raise UntrustedChain(f"issuer {describe(cert)} is not a CA (CA:FALSE)")
        if bc.path_length is not None and intermediates_below > bc.path_length:
            raise UntrustedChain(
                f"issuer {describe(cert)} allows {bc.path_length} intermediate(s) below it, "
                f"the path has {intermediates_below}"
            )
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise KeyUsageRefused(f"issuer {describe(cert)} has no keyUsage") from None
        if not ku.key_cert_sign:
            raise KeyUsageRefused(f"issuer {describe(cert)} lacks keyUsage keyCertSign")

    def verify_signed(
        self,
        payload: bytes,
        signature: bytes,
        cert: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        algorithm: Algorithm | None = None,
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Chain + revocation + signature: ``signature`` over ``payload`` by ``cert``'s key.

        Returns the certificate path. Raises any error of :meth:`verify_certificate`, or
        :class:`BadSignature`.
        """
        path = self.verify_certificate(
            cert, at=at, intermediates=intermediates, purpose=purpose
        )
        try:
            verify_with_key(certificate_public_key(cert), payload, signature, algorithm)
        except BadSignature as exc:
            raise BadSignature(f"signature by {describe(cert)} does not verify") from exc
        return path


def _check_signing_usage(
    leaf: x509.Certificate, purpose: x509.ObjectIdentifier | None = None
) -> None:
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise KeyUsageRefused(f"certificate {describe(leaf)} has no keyUsage") from None
    if not (ku.digital_signature or ku.content_commitment):
        raise KeyUsageRefused(
            f"certificate {describe(leaf)} allows neither digitalSignature nor nonRepudiation"
        )
    check_purpose(leaf, purpose)


def check_purpose(leaf: x509.Certificate, purpose: x509.ObjectIdentifier | None) -> None:
    """The extended key usage part of step 6; :class:`KeyUsageRefused` if it does not fit."""
    try:
        ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    if purpose is not None:
        if purpose not in ekus:
            raise KeyUsageRefused(
                f"certificate {describe(leaf)} is not issued for {_eku_name(purpose)} "
                "(its extended key usage does not name it)"
            )
        return
    if GATEWAY_RESULT_EKU in ekus:
        raise KeyUsageRefused(
            f"certificate {describe(leaf)} is the gateway's result key, not a person's"
        )
    if ekus and ekus <= _TLS_ONLY_EKUS:
        raise KeyUsageRefused(
            f"certificate {describe(leaf)} is issued for TLS only, not for signatures"
        )


def _eku_name(oid: x509.ObjectIdentifier) -> str:
    if oid == GATEWAY_RESULT_EKU:
        return "the gateway's results"
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# --- name constraints (RFC 5280 4.2.1.10) -------------------------------------------------
_NC_TYPES = (x509.DirectoryName, x509.DNSName, x509.RFC822Name, x509.IPAddress)


def _check_name_constraints(path: Sequence[x509.Certificate]) -> None:
    """Apply every issuer's nameConstraints to the certificates below it in ``path``.

    Self-issued intermediates are exempt (RFC 5280 6.1.4 (b)), the leaf never is. A
    constraint on a name form other than :data:`_NC_TYPES` refuses the path.
    """
    for j in range(1, len(path)):
        try:
            nc = path[j].extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        permitted = list(nc.permitted_subtrees or ())
        excluded = list(nc.excluded_subtrees or ())
        for sub in (*permitted, *excluded):
            if not isinstance(sub, _NC_TYPES):
                raise UntrustedChain(
                    f"{describe(path[j])} constrains names of an unsupported form "
                    f"({type(sub).__name__})"
                )
        for i in range(j):
            cert = path[i]
            if i > 0 and cert.subject == cert.issuer:
                continue
            for name in _names_of(cert):
                same = [p for p in permitted if type(p) is type(name)]
                if same and not any(_name_within(name, p) for p in same):
                    raise UntrustedChain(
                        f"{describe(cert)}: name {_show(name)} is outside the names "
                        f"permitted by {describe(path[j])}"
                    )
                if any(type(e) is type(name) and _name_within(name, e) for e in excluded):
                    raise UntrustedChain(
                        f"{describe(cert)}: name {_show(name)} is excluded by "
                        f"{describe(path[j])}"
                    )


def _names_of(cert: x509.Certificate) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    if len(cert.subject) > 0:
        names.append(x509.DirectoryName(cert.subject))
        for attr in cert.subject.get_attributes_for_oid(x509.oid.NameOID.EMAIL_ADDRESS):
            names.append(x509.RFC822Name(str(attr.value)))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    names.extend(n for n in san if isinstance(n, _NC_TYPES))
    return names


def _show(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def _name_within(name: x509.GeneralName, base: x509.GeneralName) -> bool:
    if isinstance(name, x509.DirectoryName) and isinstance(base, x509.DirectoryName):
        rdns, prefix = list(name.value.rdns), list(base.value.rdns)
        return rdns[: len(prefix)] == prefix
    if isinstance(name, x509.DNSName) and isinstance(base, x509.DNSName):
        host, dom = name.value.lower().rstrip("."), base.value.lower().rstrip(".")
        if dom.startswith("."):
            return host.endswith(dom)
        return dom == "" or host == dom or host.endswith("." + dom)
    if isinstance(name, x509.RFC822Name) and isinstance(base, x509.RFC822Name):
        mail, want = name.value.lower(), base.value.lower()
        if "@" in want:
            return mail == want
        host = mail.rpartition("@")[2]
        if want.startswith("."):
            return host.endswith(want)
        return host == want
    if isinstance(name, x509.IPAddress) and isinstance(base, x509.IPAddress):
        net = base.value
        addr = name.value
        if not isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return False
        if isinstance(addr, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return addr.version == net.version and addr.subnet_of(net)  # type: ignore[arg-type]
        return addr.version == net.version and addr in net
    return False


def verify_signed(
    payload: bytes,
    signature: bytes,
    cert: x509.Certificate,
    trust: TrustStore,
    *,
    at: _dt.datetime | None = None,
    intermediates: Iterable[x509.Certificate] = (),
    algorithm: Algorithm | None = None,
) -> tuple[x509.Certificate, ...]:
    """Module-level form of :meth:`TrustStore.verify_signed`."""
    return trust.verify_signed(
        payload, signature, cert, at=at, intermediates=intermediates, algorithm=algorithm
    )


class SignatureTrust(Protocol):
    """What :class:`CertificateVerifier` needs: a chain + signature check by purpose."""

    def verify_signed(
        self,
        payload: bytes,
        signature: bytes,
        cert: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]: ...


# --- DSSE signature verifiers ------------------------------------------------------------
class CertificateVerifier:
    """:class:`signing.dsse.SignatureVerifier` over certificates chained to a trust store.

    The certificate is the one embedded in the signature (its key id must match a
    non-empty ``keyid``) or, failing that, one of ``certificates`` with that key id.
    ``purpose`` is the EKU the signer's certificate must name (None: a person's
    signature); ``pinned``, when given, are the only certificates whose signatures count
    (``UnknownSigner`` for any other, however well it chains).
    """

    def __init__(
        self,
        trust: SignatureTrust,
        certificates: Iterable[x509.Certificate] = (),
        *,
        at: _dt.datetime | None = None,
        purpose: x509.ObjectIdentifier | None = None,
        pinned: Iterable[x509.Certificate] | None = None,
    ) -> None:
        self.trust = trust
        self.at = at
        self.purpose = purpose
        self.pinned = tuple(pinned) if pinned is not None else None
        self._by_keyid: dict[str, x509.Certificate] = {}
        for cert in certificates:
            self._by_keyid.setdefault(certificate_key_id(cert), cert)

    def _candidates(self, signature: EnvSig) -> list[x509.Certificate]:
        embedded = signature.certificate
        if embedded is not None:
            kid = certificate_key_id(embedded)
            if signature.keyid and signature.keyid != kid:
                raise UnknownSigner(
                    f"signature keyid {signature.keyid} does not match its embedded "
                    f"certificate {describe(embedded)}"
                )
            return [embedded]
        if signature.keyid in self._by_keyid:
            return [self._by_keyid[signature.keyid]]
        if not signature.keyid and self._by_keyid:
            return list(self._by_keyid.values())  # keyid is an optional hint (DSSE)
        raise UnknownSigner(
            f"no certificate for signer keyid {signature.keyid or '(empty)'}: none embedded "
            "and none of the known certificates has that key"
        )

    def verify_signature(self, signature: EnvSig, message: bytes) -> VerifiedSigner:
        candidates = self._candidates(signature)
        if not signature.keyid and signature.cert_der is None:
            # No keyid: find the key that made the signature, then judge its certificate.
            for cand in candidates:
                try:
                    verify_with_key(certificate_public_key(cand), message, signature.sig)
                except BadSignature:
                    continue
                candidates = [cand]
                break
            else:
                raise UnknownSigner("no known certificate's key made this keyid-less signature")
        cert = candidates[0]
        if self.pinned is not None and cert not in self.pinned:
            raise UnknownSigner(f"{describe(cert)} is not the pinned signer certificate")
        path = self.trust.verify_signed(
            message, signature.sig, cert, at=self.at, purpose=self.purpose
        )
        return VerifiedSigner(
            keyid=certificate_key_id(cert),
            public_key=certificate_public_key(cert),
            certificate=cert,
            chain=path,
        )


class PublicKeyVerifier:
    """:class:`signing.dsse.SignatureVerifier` over bare public keys, by key id.

    No certificates and no revocation: for keys pinned out of band and for tests.
    """

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._keys = {key_id_for(k): k for k in keys}

    def verify_signature(self, signature: EnvSig, message: bytes) -> VerifiedSigner:
        key = self._keys.get(signature.keyid)
        if key is not None:
            verify_with_key(key, message, signature.sig)
            return VerifiedSigner(keyid=signature.keyid, public_key=key)
        if signature.keyid:
            raise UnknownSigner(f"no trusted key with keyid {signature.keyid}")
        for kid, cand in self._keys.items():  # keyid is an optional hint (DSSE)
            try:
                verify_with_key(cand, message, signature.sig)
            except BadSignature:
                continue
            return VerifiedSigner(keyid=kid, public_key=cand)
        raise UnknownSigner("no trusted key made this keyid-less signature")


def certificate_pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)
