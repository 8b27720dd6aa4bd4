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
2. No certificate in the path has a critical extension we do not understand.
3. Revocation of every non-anchor certificate: the gateway's own store first (entries
   take effect at once), then the freshest CRL of its issuer, whose signature and
   freshness are checked (``CertificateRevoked``, ``StaleCRL``).
4. Validity of every certificate at the check time (``CertificateExpired``).
5. Issuers are CAs: basicConstraints ``CA:TRUE``, ``pathLenConstraint`` respected,
   keyUsage ``keyCertSign`` (``UntrustedChain`` / ``KeyUsageRefused``).
6. The leaf's keyUsage has digitalSignature or nonRepudiation (``KeyUsageRefused``).

All times in messages are Astana time (R9).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence

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
from signing.crl import check_crl, find_revocation
from signing.dsse import EnvSig, VerifiedSigner
from signing.errors import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
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
    x509.NameConstraints.oid,
    x509.CertificatePolicies.oid,
    x509.PolicyConstraints.oid,
    x509.InhibitAnyPolicy.oid,
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
    ) -> None:
        if not anchors:
            raise InputError("a trust store needs at least one trust anchor")
        self.anchors: tuple[x509.Certificate, ...] = tuple(anchors)
        self.intermediates: tuple[x509.Certificate, ...] = tuple(intermediates)
        self.crls: tuple[x509.CertificateRevocationList, ...] = tuple(crls)
        self.revocations = revocations
        self.clock = clock
        self.require_crl = require_crl

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
        if not candidates:
            if self.require_crl:
                raise StaleCRL(f"no CRL of {issuer.subject.rfc4514_string()} is configured")
            return
        # The freshest CRL that is genuinely the issuer's; a forged "newer" one must not
        # hide a good one. If none verifies, the freshest one's error is reported.
        candidates.sort(key=lambda c: c.last_update_utc, reverse=True)
        genuine = [c for c in candidates if _crl_signed_by(c, issuer)]
        crl = genuine[0] if genuine else candidates[0]
        check_crl(crl, issuer, at)
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
    ) -> tuple[x509.Certificate, ...]:
        """Validate ``leaf`` for signing at ``at`` (default: the clock's now).

        Returns the path, leaf first, anchor last. Raises :class:`UntrustedChain`,
        :class:`CertificateRevoked`, :class:`StaleCRL`, :class:`CertificateExpired` or
        :class:`KeyUsageRefused` (checked in that order, see the module docstring).
        """
        when = ensure_utc(at) if at is not None else ensure_utc(self.clock())
        try:
            return self._verify_certificate(leaf, when, intermediates)
        except ValueError as exc:  # cryptography parses extensions lazily
            raise UntrustedChain(
                f"certificate {describe(leaf)} or its chain is malformed", detail=str(exc)
            ) from exc

    def _verify_certificate(
        self,
        leaf: x509.Certificate,
        when: _dt.datetime,
        intermediates: Iterable[x509.Certificate],
    ) -> tuple[x509.Certificate, ...]:
        path = self._build_path(leaf, intermediates)

        for cert in path:  # step 2
            for ext in cert.extensions:
                if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
                    raise UntrustedChain(
                        f"{describe(cert)} has an unsupported critical extension "
                        f"{ext.oid.dotted_string}"
                    )

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

        _check_signing_usage(leaf)  # step 6
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
    ) -> tuple[x509.Certificate, ...]:
        """Chain + revocation + signature: ``signature`` over ``payload`` by ``cert``'s key.

        Returns the certificate path. Raises any error of :meth:`verify_certificate`, or
        :class:`BadSignature`.
        """
        path = self.verify_certificate(cert, at=at, intermediates=intermediates)
        try:
            verify_with_key(certificate_public_key(cert), payload, signature, algorithm)
        except BadSignature as exc:
            raise BadSignature(f"signature by {describe(cert)} does not verify") from exc
        return path


def _check_signing_usage(leaf: x509.Certificate) -> None:
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise KeyUsageRefused(f"certificate {describe(leaf)} has no keyUsage") from None
    if not (ku.digital_signature or ku.content_commitment):
        raise KeyUsageRefused(
            f"certificate {describe(leaf)} allows neither digitalSignature nor nonRepudiation"
        )


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


# --- DSSE signature verifiers ------------------------------------------------------------
class CertificateVerifier:
    """:class:`signing.dsse.SignatureVerifier` over certificates chained to a trust store.

    The certificate is the one embedded in the signature (its key id must match a
    non-empty ``keyid``) or, failing that, one of ``certificates`` with that key id.
    """

    def __init__(
        self,
        trust: TrustStore,
        certificates: Iterable[x509.Certificate] = (),
        *,
        at: _dt.datetime | None = None,
    ) -> None:
        self.trust = trust
        self.at = at
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
        path = self.trust.verify_signed(message, signature.sig, cert, at=self.at)
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
