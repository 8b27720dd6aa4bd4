"""Test PKI built with ``cryptography`` builders, independent of ``signing.ca``.

Independent construction keeps trust tests honest: a bug shared by the CA and the
verifier would otherwise cancel out. Every knob a negative test needs is a keyword.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing.software import SoftwareSigner

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

SIGNING_KU = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
CA_KU = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
ENCIPHER_ONLY_KU = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AFM test"),
        ]
    )


@dataclass
class Node:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def signer(self) -> SoftwareSigner:
        return SoftwareSigner(self.key, certificate=self.cert)


def issue(
    subject: str,
    issuer: Node | None,
    *,
    ca: bool | None = False,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = SIGNING_KU,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    key: ec.EllipticCurvePrivateKey | None = None,
    extra: list[tuple[Any, bool]] = (),  # type: ignore[assignment]
    issuer_name: x509.Name | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    subject_name: x509.Name | None = None,
) -> Node:
    """A certificate for ``subject`` issued by ``issuer`` (self-signed when ``None``)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subj = subject_name or name(subject)
    b = (
        x509.CertificateBuilder()
        .subject_name(subj)
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else subj))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_usage is not None:
        b = b.add_extension(key_usage, critical=True)
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    sk = signing_key or (issuer.key if issuer else key)
    return Node(cert=b.sign(sk, hashes.SHA256()), key=key)


def root(cn: str = "Test Root", **kw: Any) -> Node:
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", CA_KU)
    kw.setdefault("not_before", NOW - 365 * DAY)
    kw.setdefault("not_after", NOW + 3650 * DAY)
    return issue(cn, None, **kw)


def intermediate(parent: Node, cn: str = "Test Issuing", **kw: Any) -> Node:
    kw.setdefault("ca", True)
    kw.setdefault("path_length", 0)
    kw.setdefault("key_usage", CA_KU)
    kw.setdefault("not_before", NOW - 300 * DAY)
    kw.setdefault("not_after", NOW + 3000 * DAY)
    return issue(cn, parent, **kw)


def crl(
    issuer: Node,
    revoked: list[tuple[int, dt.datetime, x509.ReasonFlags | None]] = (),  # type: ignore[assignment]
    *,
    last_update: dt.datetime = NOW - DAY,
    next_update: dt.datetime = NOW + 6 * DAY,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    extra: list[tuple[Any, bool]] = (),  # type: ignore[assignment]
) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    for serial, when, reason in revoked:
        rb = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            rb = rb.add_extension(x509.CRLReason(reason), critical=False)
        b = b.add_revoked_certificate(rb.build())
    return b.sign(signing_key or issuer.key, hashes.SHA256())
