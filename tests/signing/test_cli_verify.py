"""``siogw verify`` and ``siogw ca`` as subprocesses: exit codes and one-line reasons."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing import dsse
from signing.ca import CertificateAuthority
from signing.csr import build_csr, csr_pem
from signing.software import SoftwareSigner, generate_software_key


def siogw(*args: str, home: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIOGW_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "siogw", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class World:
    home: Path
    ca: CertificateAuthority
    anchor: Path
    chain: Path
    signer: SoftwareSigner
    cert: x509.Certificate
    good: Path

    def envelope(self, name: str, env: dsse.Envelope) -> Path:
        path = self.home / name
        path.write_bytes(env.to_json())
        return path

    def verify(self, envelope: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return siogw("verify", str(envelope), "--trust", str(self.anchor),
                     "--intermediate", str(self.chain), *extra, home=self.home)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("home")
    ca = CertificateAuthority.init(home / "ca", "CN=Test NCA Root,C=KZ",
                                   intermediate_subject="CN=Test NCA Issuing,C=KZ")
    key = generate_software_key("ecdsa-p256-sha256")
    cert = ca.issue(build_csr(SoftwareSigner(key), "CN=Analyst One,O=AFM,C=KZ"), "user", 30)
    signer = SoftwareSigner(key, certificate=cert)
    w = World(home=home, ca=ca, anchor=home / "ca" / "root.pem", chain=home / "ca" / "chain.pem",
              signer=signer, cert=cert, good=home / "good.json")
    w.good.write_bytes(dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"query 1", [signer]).to_json())
    return w


def _one_line_error(proc: subprocess.CompletedProcess[str], reason: str) -> str:
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"siogw: error: {reason}: "), lines[0]
    return lines[0]


def test_valid_envelope_prints_subject(world: World) -> None:
    proc = world.verify(world.good, "--payload-out", str(world.home / "payload.bin"))
    assert proc.returncode == 0, proc.stderr
    # issue 15: "valid: signed by" the subject, with the key and the certificate named
    assert proc.stdout.strip() == (
        f"valid: signed by CN=Analyst One,O=AFM,C=KZ (key {world.signer.key_id}, "
        f"certificate serial {world.cert.serial_number:x}, issued by CN=Test NCA Issuing,C=KZ)"
    )
    assert (world.home / "payload.bin").read_bytes() == b"query 1"


def test_bad_signature(world: World) -> None:
    doc = json.loads(world.good.read_bytes())
    doc["payload"] = "cXVlcnkgMg=="  # "query 2"
    path = world.home / "tampered.json"
    path.write_text(json.dumps(doc))
    _one_line_error(world.verify(path), "bad signature")


def test_unknown_signer(world: World) -> None:
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [world.signer], include_certificates=False)
    path = world.envelope("bare.json", env)
    _one_line_error(world.verify(path), "unknown signer")
    # the same envelope verifies once the signer's certificate is supplied
    cert_path = world.home / "signer.pem"
    cert_path.write_bytes(_pem(world.cert))
    assert world.verify(path, "--cert", str(cert_path)).returncode == 0


def test_untrusted_chain(world: World, tmp_path: Path) -> None:
    other = CertificateAuthority.init(tmp_path / "other", "CN=Other Root")
    proc = siogw("verify", str(world.good), "--trust", str(tmp_path / "other" / "root.pem"),
                 home=world.home)
    _one_line_error(proc, "untrusted chain")
    assert other.root_certificate.subject.rfc4514_string() == "CN=Other Root"


def test_expired(world: World) -> None:
    key = generate_software_key("ecdsa-p256-sha256")
    old = world.ca.issue(
        build_csr(SoftwareSigner(key), "CN=Retired"), "user", days=1,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
    )
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [SoftwareSigner(key, certificate=old)])
    line = _one_line_error(world.verify(world.envelope("expired.json", env)), "expired")
    assert "+05:00" in line


def test_malformed_envelope(world: World) -> None:
    path = world.home / "junk.json"
    path.write_text("{not json")
    line = _one_line_error(world.verify(path), "malformed envelope")
    assert "not JSON" in line
    path.write_text('{"payload": "", "payloadType": "x", "signatures": []}')
    assert "no signatures" in _one_line_error(world.verify(path), "malformed envelope")


def test_revoked_by_crl_and_by_revocation_file(world: World) -> None:
    key = generate_software_key("ecdsa-p256-sha256")
    signer = SoftwareSigner(key)
    csr_path = world.home / "lost.csr"
    csr_path.write_bytes(csr_pem(build_csr(signer, "CN=Lost Token")))
    cert_path = world.home / "lost.pem"
    siogw("ca", "issue", "--dir", str(world.ca.directory), "--csr", str(csr_path),
          "--profile", "user", "--days", "30", "--out", str(cert_path), home=world.home, check=True)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q",
                             [SoftwareSigner(key, certificate=cert)])
    path = world.envelope("lost.json", env)
    revfile = world.home / "revocations.json"
    assert world.verify(path, "--revocations", str(revfile)).returncode == 0

    # revoked in the CA and in the gateway list: the list takes effect at once
    siogw("ca", "revoke", "--dir", str(world.ca.directory), f"{cert.serial_number:x}",
          "--reason", "keyCompromise", "--at", "2026-11-01T10:00:00+05:00",
          "--revocations", str(revfile), home=world.home, check=True)
    line = _one_line_error(world.verify(path, "--revocations", str(revfile)), "revoked")
    assert "revoked at 2026-11-01T10:00:00+05:00 (reason: keyCompromise)" in line
    # without the list, the old CRL does not know yet; the new one does
    assert world.verify(path).returncode == 0
    siogw("ca", "crl", "--dir", str(world.ca.directory), "--days", "3", home=world.home,
          check=True)
    line = _one_line_error(
        world.verify(path, "--crl", str(world.ca.directory / "crl.pem")), "revoked"
    )
    assert "(reason: keyCompromise)" in line
    listing = siogw("ca", "list", "--dir", str(world.ca.directory), home=world.home, check=True)
    assert f"{cert.serial_number:x}\tuser\tCN=Lost Token" in listing.stdout
    assert "revoked 2026-11-01T10:00:00+05:00 keyCompromise" in listing.stdout


def test_stale_crl(world: World) -> None:
    crl = world.ca.publish_crl(
        dt.timedelta(days=1), now=dt.datetime.now(dt.UTC) - dt.timedelta(days=5)
    )
    path = world.home / "stale-crl.pem"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    line = _one_line_error(world.verify(world.good, "--crl", str(path)), "stale CRL")
    assert "nextUpdate" in line


def test_missing_file_is_an_input_error(world: World) -> None:
    proc = world.verify(world.home / "nope.json")
    assert proc.returncode == 8
    assert "cannot read envelope" in proc.stderr


def test_ca_cli_end_to_end(tmp_path: Path) -> None:
    home = tmp_path
    cadir = home / "ca"
    out = siogw("ca", "init", "--subject", "CN=CLI Root,C=KZ", home=home, check=True)
    assert "trust anchor" in out.stdout and (cadir / "root.pem").exists()
    again = siogw("ca", "init", "--subject", "CN=CLI Root,C=KZ", home=home)
    assert again.returncode == 2 and "already holds a CA" in again.stderr

    key = generate_software_key("ed25519")
    (home / "u.csr").write_bytes(csr_pem(build_csr(SoftwareSigner(key), "CN=CLI User")))
    issued = siogw("ca", "issue", "--csr", str(home / "u.csr"), home=home, check=True)
    cert = x509.load_pem_x509_certificate(issued.stdout.encode())
    assert cert.subject.rfc4514_string() == "CN=CLI User"

    env = dsse.sign_envelope(dsse.PAYLOAD_CONSENT, b"{}", [SoftwareSigner(key, certificate=cert)])
    (home / "e.json").write_bytes(env.to_json())
    ok = siogw("verify", str(home / "e.json"), "--trust", str(cadir / "root.pem"),
               "--payload-type", dsse.PAYLOAD_CONSENT, home=home)
    assert ok.returncode == 0
    assert ok.stdout.startswith("valid: signed by CN=CLI User (key "), ok.stdout
    wrong_type = siogw("verify", str(home / "e.json"), "--trust", str(cadir / "root.pem"),
                       "--payload-type", dsse.PAYLOAD_QUERY, home=home)
    _one_line_error(wrong_type, "malformed envelope")

    bad = siogw("ca", "revoke", "zz-not-hex", home=home)
    assert bad.returncode == 8 and "hexadecimal" in bad.stderr


# --- issue 13: a full-chain bundle after --cert (defect 8) -----------------------------------
def test_cert_bundle_supplies_the_intermediates(world: World) -> None:
    assert world.ca.intermediate_certificate is not None
    bundle = world.home / "fullchain.pem"
    bundle.write_bytes(_pem(world.cert) + _pem(world.ca.intermediate_certificate))
    bare = world.envelope("bare-bundle.json", dsse.sign_envelope(
        dsse.PAYLOAD_QUERY, b"q", [world.signer], include_certificates=False))
    for envelope in (world.good, bare):
        proc = siogw("verify", str(envelope), "--trust", str(world.anchor),
                     "--cert", str(bundle), home=world.home)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(
            f"valid: signed by {world.cert.subject.rfc4514_string()} (key "
        ), proc.stdout


def test_untrusted_chain_message_says_how_to_pass_intermediates(world: World) -> None:
    proc = siogw("verify", str(world.good), "--trust", str(world.anchor), home=world.home)
    line = _one_line_error(proc, "untrusted chain")
    assert "--intermediate" in line and "--cert" in line


# --- issue 13: a gateway result is not a person's signature (defect 6) -----------------------
@pytest.fixture(scope="module")
def gateway(world: World) -> tuple[SoftwareSigner, Path]:
    key = generate_software_key("ecdsa-p256-sha256")
    cert = world.ca.issue(build_csr(SoftwareSigner(key), "CN=IES Gateway,C=KZ"), "gateway", 30)
    path = world.home / "gateway.pem"
    path.write_bytes(_pem(cert))
    return SoftwareSigner(key, certificate=cert), path


def test_analyst_signed_result_is_refused(
    world: World, gateway: tuple[SoftwareSigner, Path]
) -> None:
    gw_signer, gw_cert = gateway
    forged = world.envelope("forged-result.json", dsse.sign_envelope(
        dsse.PAYLOAD_RESULT, b"result", [world.signer]))
    real = world.envelope("result.json", dsse.sign_envelope(
        dsse.PAYLOAD_RESULT, b"result", [gw_signer]))
    result = ("--payload-type", dsse.PAYLOAD_RESULT)
    line = _one_line_error(world.verify(forged, *result), "key usage")
    assert "gateway's results" in line
    ok = world.verify(real, *result)
    assert ok.returncode == 0, ok.stderr
    assert "IES Gateway" in ok.stdout
    # pinned: only the gateway's certificate counts, whatever the EKU
    _one_line_error(world.verify(forged, *result, "--signer-cert", str(gw_cert)),
                    "unknown signer")
    assert world.verify(real, *result, "--signer-cert", str(gw_cert)).returncode == 0
    # --expect-eku works for any payload type
    _one_line_error(world.verify(world.good, "--expect-eku", "gateway"), "key usage")


def test_gateway_certificate_cannot_sign_for_a_person(
    world: World, gateway: tuple[SoftwareSigner, Path]
) -> None:
    env = world.envelope("gw-query.json", dsse.sign_envelope(
        dsse.PAYLOAD_QUERY, b"q", [gateway[0]]))
    line = _one_line_error(world.verify(env), "key usage")
    assert "gateway's result key" in line


def test_result_envelope_expects_the_gateway_without_payload_type_flag(world: World) -> None:
    forged = world.envelope("forged-result-2.json", dsse.sign_envelope(
        dsse.PAYLOAD_RESULT, b"result", [world.signer]))
    _one_line_error(world.verify(forged), "key usage")


# --- issue 15: a query the analyst signed (`siogw client query --export-request`) ------------
def test_signed_query_is_described(world: World) -> None:
    from siogw_api.v1 import query_pb2

    query = query_pb2.Query(
        request_id="0b7c1b8e-5a1e-4e0e-9a51-1d1f0c9e2f10", resource=11,
        parameters={"iin": "900101300017"}, basis="financial_monitoring",
        task_ref="CASE-7", justification="check\x1b[2J the payer",
        created_at="2026-12-05T10:00:00+05:00",
    )
    path = world.envelope("query.json", dsse.sign_envelope(
        dsse.PAYLOAD_QUERY, query.SerializeToString(deterministic=True), [world.signer]))
    proc = world.verify(path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("valid: signed by CN=Analyst One,O=AFM,C=KZ (key ")
    assert lines[1] == ("query 0b7c1b8e-5a1e-4e0e-9a51-1d1f0c9e2f10 created "
                        "2026-12-05T10:00:00+05:00: resource 11 (iin=900101300017)")
    # what the signer wrote is shown, but a terminal escape in it is shown escaped
    assert lines[2] == ("basis financial_monitoring; task CASE-7; "
                        "justification: check\\x1b[2J the payer")
    assert "\x1b" not in proc.stdout
