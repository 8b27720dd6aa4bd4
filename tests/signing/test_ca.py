"""The file-based test CA and CSRs built through a Signer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing.ca import CAError, CertificateAuthority, Profile
from signing.crl import load_crl
from signing.csr import build_csr, load_csr
from signing.errors import BadSignature, CertificateRevoked, StaleCRL
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore
from siogw_api.errors import InputError

ALGS = ["ecdsa-p256-sha256", "rsa-pss-sha256", "rsa-pkcs1v15-sha256", "ed25519"]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(
        tmp_path_factory.mktemp("ca") / "ca",
        "CN=Test NCA Root,O=Test,C=KZ",
        intermediate_subject="CN=Test NCA Issuing,O=Test,C=KZ",
    )


def _trust(ca: CertificateAuthority, **kw) -> TrustStore:  # type: ignore[no-untyped-def]
    return TrustStore([ca.root_certificate], [ca.chain[0]], **kw)


@pytest.mark.parametrize("alg", ALGS)
def test_csr_through_signer_round_trip(alg: str) -> None:
    signer = SoftwareSigner(generate_software_key(alg), alg)
    der = build_csr(signer, "CN=Alice,O=AFM,C=KZ", emails=["alice@afm.example"])
    req = load_csr(der)
    assert req.subject.rfc4514_string() == "CN=Alice,O=AFM,C=KZ"
    assert req.public_key() == signer.public_key
    san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@afm.example"]


def test_csr_with_wrong_signature_refused() -> None:
    a = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    der = bytearray(build_csr(a, "CN=Alice"))
    der[-5] ^= 0xFF  # inside the signature
    with pytest.raises((BadSignature, InputError)):
        load_csr(bytes(der))


def test_csr_bad_inputs() -> None:
    with pytest.raises(InputError):
        load_csr(b"garbage")
    with pytest.raises(InputError, match="RFC 4514"):
        build_csr(SoftwareSigner(generate_software_key("ed25519")), "no equals sign")


@pytest.mark.parametrize("alg", ALGS)
def test_issue_user_certificate_verifies(ca: CertificateAuthority, alg: str) -> None:
    signer = SoftwareSigner(generate_software_key(alg), alg)
    cert = ca.issue(build_csr(signer, "CN=Alice,O=AFM"), Profile.USER, days=30)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.chain[0].subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30)
    sig = signer.sign(b"query")
    assert len(_trust(ca).verify_signed(b"query", sig, cert)) == 3


def test_server_profile(ca: CertificateAuthority) -> None:
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(signer, "CN=gw.test", dns_names=["gw.test", "localhost"]), "server")
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.test", "localhost"]
    # without a requested SAN the CN is used
    cn_only = ca.issue(build_csr(signer, "CN=gw2.test"), "server")
    san2 = cn_only.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san2.get_values_for_type(x509.DNSName) == ["gw2.test"]


def test_audit_profile_and_index(ca: CertificateAuthority) -> None:
    signer = SoftwareSigner(generate_software_key("ed25519"))
    cert = ca.issue(build_csr(signer, "CN=audit sealer"), "audit", days=10)
    rec = [r for r in ca.records() if r.serial == cert.serial_number]
    assert rec and rec[0].profile == "audit" and rec[0].revoked_at is None
    assert ca.certificate(cert.serial_number) == cert


def test_validity_capped_by_issuer(ca: CertificateAuthority) -> None:
    signer = SoftwareSigner(generate_software_key("ed25519"))
    cert = ca.issue(build_csr(signer, "CN=Long"), "user", days=100_000)
    assert cert.not_valid_after_utc == ca.issuing_certificate.not_valid_after_utc


def test_revoke_and_publish_crl(ca: CertificateAuthority) -> None:
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(signer, "CN=Lost Token"), "user")
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    rec = ca.revoke(cert.serial_number, "keyCompromise", at=when)
    assert rec.revoked_at == when
    crl = ca.publish_crl(dt.timedelta(days=2))
    assert load_crl((ca.directory / "crl.pem").read_bytes()) == crl
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None and entry.revocation_date_utc == when
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert ca.publish_crl().extensions.get_extension_for_class(
        x509.CRLNumber
    ).value.crl_number == number + 1
    with pytest.raises(CertificateRevoked) as ei:
        _trust(ca, crls=[crl]).verify_certificate(cert)
    assert ei.value.revocation_reason == "keyCompromise"
    # with require_crl, the root's CRL (for the intermediate) is needed as well
    root_crl = load_crl((ca.directory / "root-crl.pem").read_bytes())
    assert root_crl.issuer == ca.root_certificate.subject
    fresh = ca.issue(build_csr(signer, "CN=Replacement"), "user")
    with pytest.raises(StaleCRL, match="no CRL of CN=Test NCA Root"):
        _trust(ca, crls=[ca.publish_crl()], require_crl=True).verify_certificate(fresh)
    crls = [ca.publish_crl(), load_crl((ca.directory / "root-crl.pem").read_bytes())]
    assert _trust(ca, crls=crls, require_crl=True).verify_certificate(fresh)
    with pytest.raises(InputError):
        ca.revoke(424242, "keyCompromise")
    with pytest.raises(InputError, match="unknown revocation reason"):
        ca.revoke(cert.serial_number, "bored")


def test_reopen(ca: CertificateAuthority) -> None:
    again = CertificateAuthority.open(ca.directory)
    assert again.root_certificate == ca.root_certificate
    assert again.chain == ca.chain
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = again.issue(build_csr(signer, "CN=Reopened"), "user")
    assert _trust(ca).verify_certificate(cert)


def test_root_only_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Solo Root")
    assert ca.chain == (ca.root_certificate,)
    bc = ca.root_certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(signer, "CN=Direct"), "user")
    assert len(TrustStore([ca.root_certificate]).verify_certificate(cert)) == 2
    with pytest.raises(CAError, match="already holds a CA"):
        CertificateAuthority.init(tmp_path / "ca", "CN=Again")
    with pytest.raises(CAError, match="no CA"):
        CertificateAuthority.open(tmp_path / "nothing")


def test_unsupported_request_keys_refused(ca: CertificateAuthority) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding

    # built with cryptography: SoftwareSigner itself refuses these keys
    weak_keys = (
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    )
    for key in weak_keys:
        req = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name.from_rfc4514_string("CN=Weak"))
            .sign(key, hashes.SHA256())
        )
        with pytest.raises(InputError, match="not one sio-gateway accepts"):
            ca.issue(req.public_bytes(Encoding.DER), "user")
