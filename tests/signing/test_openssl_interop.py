"""Interoperability with the ``openssl`` CLI in both directions.

* A CA, certificates, a signature and a CRL made by ``openssl`` are honoured by
  :mod:`signing.trust` (valid, revoked with reason, stale CRL).
* Certificates, CRLs and CSRs built by :mod:`signing.ca` / :mod:`signing.csr` (asn1crypto,
  signed through a Signer, including a SoftHSM token key) pass ``openssl verify`` /
  ``openssl req -verify``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing.ca import CertificateAuthority
from signing.crl import load_crl
from signing.csr import build_csr, csr_pem
from signing.errors import BadSignature, CertificateRevoked, StaleCRL
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")

CA_CONF = """\
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/root.pem
private_key = $dir/root.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = {crl_days}
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
[ usr ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
"""


def ossl(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _openssl_ca(d: Path, crl_days: int = 7) -> None:
    (d / "newcerts").mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(CA_CONF.format(dir=d, crl_days=crl_days))
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", "root.key", cwd=d)
    ossl("req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=OpenSSL Root/O=Interop",
         "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem", cwd=d)


def _openssl_user(d: Path, name: str) -> x509.Certificate:
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", f"{name}.key", cwd=d)
    ossl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr",
         cwd=d)
    ossl("ca", "-batch", "-config", "ca.cnf", "-extensions", "usr", "-in", f"{name}.csr",
         "-out", f"{name}.pem", "-notext", cwd=d)
    return x509.load_pem_x509_certificate((d / f"{name}.pem").read_bytes())


def test_openssl_made_pki_is_honoured(tmp_path: Path) -> None:
    d = tmp_path
    _openssl_ca(d)
    alice = _openssl_user(d, "alice")
    bob = _openssl_user(d, "bob")
    ossl("ca", "-config", "ca.cnf", "-revoke", "bob.pem", "-crl_reason", "keyCompromise", cwd=d)
    ossl("ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem", cwd=d)

    root = x509.load_pem_x509_certificate((d / "root.pem").read_bytes())
    crl = load_crl((d / "crl.pem").read_bytes())
    trust = TrustStore([root], crls=[crl])

    (d / "data").write_bytes(b"signed by openssl")
    ossl("dgst", "-sha256", "-sign", "alice.key", "-out", "alice.sig", "data", cwd=d)
    sig = (d / "alice.sig").read_bytes()
    assert trust.verify_signed(b"signed by openssl", sig, alice) == (alice, root)
    with pytest.raises(BadSignature):
        trust.verify_signed(b"something else", sig, alice)

    with pytest.raises(CertificateRevoked) as ei:
        trust.verify_certificate(bob)
    assert ei.value.revocation_reason == "keyCompromise"
    assert ei.value.serial == bob.serial_number


def test_openssl_stale_crl(tmp_path: Path) -> None:
    _openssl_ca(tmp_path, crl_days=1)
    alice = _openssl_user(tmp_path, "alice")
    ossl("ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem", cwd=tmp_path)
    root = x509.load_pem_x509_certificate((tmp_path / "root.pem").read_bytes())
    crl = load_crl((tmp_path / "crl.pem").read_bytes())
    trust = TrustStore([root], crls=[crl])
    assert trust.verify_certificate(alice)
    with pytest.raises(StaleCRL, match="nextUpdate"):
        trust.verify_certificate(alice, at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))


def test_our_pki_passes_openssl_verify(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Our Root,C=KZ",
                                   intermediate_subject="CN=Our Issuing,C=KZ")
    certs = {}
    for alg in ("ecdsa-p256-sha256", "rsa-pss-sha256", "ed25519"):
        signer = SoftwareSigner(generate_software_key(alg), alg)
        der = build_csr(signer, f"CN=User {alg}")
        (tmp_path / f"{alg}.csr").write_bytes(csr_pem(der))
        ossl("req", "-verify", "-noout", "-in", f"{alg}.csr", cwd=tmp_path)
        certs[alg] = ca.issue(der, "user", 30)
        (tmp_path / f"{alg}.pem").write_bytes(
            certs[alg].public_bytes(serialization.Encoding.PEM)
        )
    ca.revoke(certs["ed25519"].serial_number, "keyCompromise")
    ca.publish_crl()
    chain = str(ca.directory / "chain.pem")
    crl_file = str(ca.directory / "crl.pem")
    # openssl wants the CRLs of every CA on the path with -crl_check_all; check the leaf's
    for alg in ("ecdsa-p256-sha256", "rsa-pss-sha256"):
        out = ossl("verify", "-CAfile", chain, "-crl_check", "-CRLfile", crl_file,
                   f"{alg}.pem", cwd=tmp_path)
        assert out.strip().endswith("OK")
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", chain, "-crl_check", "-CRLfile", crl_file,
         "ed25519.pem"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0 and "revoked" in (proc.stdout + proc.stderr)


def test_token_key_csr_passes_openssl(ec_token_key, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "token.csr").write_bytes(csr_pem(build_csr(ec_token_key.signer, "CN=Token")))
    out = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", "token.csr"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Root")
    cert = ca.issue((tmp_path / "token.csr").read_bytes(), "user", 30)
    (tmp_path / "token.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
    )
    ossl("verify", "-CAfile", str(ca.directory / "root.pem"), "token.pem", cwd=tmp_path)


def test_server_certificate_is_fit_for_tls(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Root")
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(signer, "CN=gw.test", dns_names=["gw.test"]), "server", 30)
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    root = str(ca.directory / "root.pem")
    ossl("verify", "-CAfile", root, "-purpose", "sslserver", "-verify_hostname", "gw.test",
         "server.pem", cwd=tmp_path)
    wrong = subprocess.run(
        ["openssl", "verify", "-CAfile", root, "-verify_hostname", "other.test", "server.pem"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert wrong.returncode != 0
