"""CSRs and certificates for keys on real SoftHSM tokens (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from signing import dsse
from signing.ca import CertificateAuthority
from signing.csr import build_csr, load_csr
from signing.errors import CertificateRevoked
from signing.revocation import InMemoryRevocationStore, revoke_certificate
from signing.trust import CertificateVerifier, TrustStore


def test_token_key_csr_gets_a_certificate_that_verifies(ec_token_key, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    signer = ec_token_key.signer
    req = load_csr(build_csr(signer, "CN=Token User,O=AFM,C=KZ"))  # proof of possession
    assert req.public_key() == signer.public_key

    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Test NCA Root,C=KZ",
                                   intermediate_subject="CN=Test NCA Issuing,C=KZ")
    cert = ca.issue(build_csr(signer, "CN=Token User,O=AFM,C=KZ"), "user", 30)
    assert cert.public_key() == signer.public_key
    revs = InMemoryRevocationStore()
    trust = TrustStore([ca.root_certificate], [ca.chain[0]], revocations=revs)

    sig = signer.sign(b"signed on the token")
    assert trust.verify_signed(b"signed on the token", sig, cert)[0] == cert

    # a DSSE envelope signed on the token, certificate attached by the caller
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [signer], include_certificates=False)
    got = dsse.verify_envelope(env, CertificateVerifier(trust, [cert]))
    assert got.signers[0].certificate == cert

    revoke_certificate(revs, cert, "keyCompromise")
    with pytest.raises(CertificateRevoked) as ei:
        dsse.verify_envelope(env, CertificateVerifier(trust, [cert]))
    assert ei.value.serial == cert.serial_number


@pytest.mark.parametrize("fixture", ["ec_token_key", "rsa_token_key"])
def test_ca_with_root_key_on_a_token(fixture: str, request, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_key = request.getfixturevalue(fixture)
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Token Root", key_uri=token_key.uri)
    assert ca.root_certificate.public_key() == token_key.signer.public_key
    # reopening loads the token key again through its URI
    again = CertificateAuthority.open(tmp_path / "ca")
    from signing.software import SoftwareSigner, generate_software_key

    user = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = again.issue(build_csr(user, "CN=Issued By Token"), "user")
    assert TrustStore([ca.root_certificate]).verify_certificate(cert)
    crl = again.publish_crl()
    assert crl.is_signature_valid(ca.root_certificate.public_key())  # type: ignore[arg-type]
    assert isinstance(crl, x509.CertificateRevocationList)
