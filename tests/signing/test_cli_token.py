"""``siogw token`` lifecycle on real SoftHSM tokens, as subprocesses.

init -> keygen (+CSR) -> certificate -> change-pin (dated, R8) -> list warns when the
PIN is older than 30 days -> rotate (new key + certificate; the old one still verifies).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from signing.ca import CertificateAuthority
from signing.csr import load_csr
from signing.trust import TrustStore


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "siogw", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def env(softhsm_store, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **os.environ,
        "SIOGW_HOME": str(tmp_path / "home"),
        "T_SO": secrets.token_urlsafe(10),
        "T_PIN": secrets.token_urlsafe(10),
        "T_NEW": secrets.token_urlsafe(10),
    }


def test_token_lifecycle(env: dict[str, str], softhsm_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    label = f"cli-{secrets.token_hex(4)}"
    out = run("token", "init", label, "--so-pin-env", "T_SO", "--pin-env", "T_PIN", env=env)
    assert f"initialised token {label!r}" in out.stdout
    ages_file = Path(softhsm_store.root) / "pin-ages.json"
    assert label in json.loads(ages_file.read_text())["tokens"]

    # keygen with a CSR signed on the token
    csr_path = tmp_path / "k1.csr"
    run("token", "keygen", label, "--key", "k1", "--pin-env", "T_PIN",
        "--subject", "CN=Token Holder,O=AFM", "--csr-out", str(csr_path), env=env)
    req = load_csr(csr_path.read_bytes())
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Test NCA Root")
    old_cert = ca.issue(csr_path.read_bytes(), "user", 30)

    listing = run("token", "list", label, "--pin-env", "T_PIN", env=env)
    assert "key 'k1'\tec" in listing.stdout
    assert "warning" not in listing.stderr

    # an old PIN date makes `token list` warn (R8)
    doc = json.loads(ages_file.read_text())
    doc["tokens"][label]["changed_at"] = "2026-01-01T09:00:00+05:00"
    ages_file.write_text(json.dumps(doc))
    stale = run("token", "list", label, env=env)
    assert f"warning: PIN of token {label!r} is" in stale.stderr
    assert "2026-01-01T09:00:00+05:00" in stale.stderr

    # change-pin: C_SetPIN, dated; the old PIN stops working, the warning goes
    run("token", "change-pin", label, "--pin-env", "T_PIN", "--new-pin-env", "T_NEW", env=env)
    refused = run("token", "list", label, "--pin-env", "T_PIN", env=env, check=False)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1
    fresh = run("token", "list", label, "--pin-env", "T_NEW", env=env)
    assert "warning" not in fresh.stderr and "key 'k1'" in fresh.stdout
    changed = dt.datetime.fromisoformat(json.loads(ages_file.read_text())["tokens"][label]
                                        ["changed_at"])
    assert dt.datetime.now(dt.UTC) - changed < dt.timedelta(hours=1)

    # rotate: a new key and certificate; the old certificate still verifies
    cert_path = tmp_path / "k2.pem"
    run("token", "rotate", label, "--key", "k2", "--subject", "CN=Token Holder,O=AFM",
        "--ca-dir", str(tmp_path / "ca"), "--cert-out", str(cert_path),
        "--pin-env", "T_NEW", env=env)
    new_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert new_cert.public_key() != req.public_key()
    trust = TrustStore([ca.root_certificate])
    assert trust.verify_certificate(new_cert)
    assert trust.verify_certificate(old_cert)
    keys = run("token", "list", label, "--pin-env", "T_NEW", env=env).stdout
    assert "key 'k1'" in keys and "key 'k2'" in keys


def test_pin_sources_required(env: dict[str, str]) -> None:
    proc = run("token", "keygen", "whatever", "--key", "k", env=env, check=False)
    assert proc.returncode == 2
    assert "--pin-env VAR or --pin-file PATH" in proc.stderr


def test_pin_age_warning_unit() -> None:
    from signing.pin_ages import pin_age_warning

    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert pin_age_warning("t", now - dt.timedelta(days=30), now) is None
    warning = pin_age_warning("t", now - dt.timedelta(days=31), now)
    assert warning is not None and "31 days old" in warning
    unknown = pin_age_warning("t", None, now)
    assert unknown is not None and "unknown" in unknown


def test_ca_init_with_token_root_key(ec_token_key, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "SIOGW_HOME": str(tmp_path / "home")}
    cadir = tmp_path / "tca"
    run("ca", "init", "--dir", str(cadir), "--subject", "CN=Token CLI Root",
        "--key-uri", ec_token_key.uri, env=env)
    root = x509.load_pem_x509_certificate((cadir / "root.pem").read_bytes())
    assert root.public_key() == ec_token_key.signer.public_key
    assert not (cadir / "root-key.pem").exists()
    crl = run("ca", "crl", "--dir", str(cadir), env=env)
    assert "0 revoked" in crl.stdout


def test_import_cert_puts_the_certificate_beside_the_key(
    env: dict[str, str], softhsm_store, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """Issue 15: `token keygen` leaves no certificate on the token; `token import-cert`
    stores it, so a signer (and `siogw client login` without --cert) finds it there."""
    from cryptography.hazmat.primitives import serialization

    from signing import load_signer

    label = f"imp-{secrets.token_hex(4)}"
    run("token", "init", label, "--so-pin-env", "T_SO", "--pin-env", "T_PIN", env=env)
    csr_path = tmp_path / "k.csr"
    run("token", "keygen", label, "--key", "sign", "--pin-env", "T_PIN",
        "--subject", "CN=Imported Holder,O=AFM", "--csr-out", str(csr_path), env=env)
    run("token", "keygen", label, "--key", "other", "--pin-env", "T_PIN", env=env)
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Test NCA Root")
    cert_path = tmp_path / "k.pem"
    cert_path.write_bytes(
        ca.issue(csr_path.read_bytes(), "user", 30).public_bytes(serialization.Encoding.PEM)
    )
    uri = f"pkcs11:token={label};object=sign;type=private"
    os.environ["T_PIN_IMPORT"] = env["T_PIN"]
    try:
        assert load_signer(uri, pin_source="env:T_PIN_IMPORT").certificate is None

        # the certificate of another key is refused, and nothing is stored
        wrong = run("token", "import-cert", label, "--key", "other", "--cert", str(cert_path),
                    "--pin-env", "T_PIN", env=env, check=False)
        assert wrong.returncode == 8 and "is not the certificate of key 'other'" in wrong.stderr
        missing = run("token", "import-cert", label, "--key", "nope", "--cert", str(cert_path),
                      "--pin-env", "T_PIN", env=env, check=False)
        assert missing.returncode == 3 and "no key labelled 'nope'" in missing.stderr

        out = run("token", "import-cert", label, "--key", "sign", "--cert", str(cert_path),
                  "--pin-env", "T_PIN", env=env)
        assert "stored on token" in out.stdout and "CN=Imported Holder" in out.stdout
        cert = load_signer(uri, pin_source="env:T_PIN_IMPORT").certificate
        assert cert is not None and cert.subject.rfc4514_string() == "CN=Imported Holder,O=AFM"

        # a second import for the same key is refused unless --replace
        again = run("token", "import-cert", label, "--key", "sign", "--cert", str(cert_path),
                    "--pin-env", "T_PIN", env=env, check=False)
        assert again.returncode == 2 and "already holds a certificate" in again.stderr
        run("token", "import-cert", label, "--key", "sign", "--cert", str(cert_path),
            "--replace", "--pin-env", "T_PIN", env=env)
    finally:
        del os.environ["T_PIN_IMPORT"]
