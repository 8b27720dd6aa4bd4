"""``siogw admin`` (bootstrap on the database) and ``siogw serve`` as subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.store import Store
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from siogw.cli import main


def _siogw(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIOGW_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "siogw", *args], env=env, capture_output=True, text=True,
        timeout=60,
    )


def _gateway_key_config(home: Path) -> SoftwareSigner:
    """A siogw.toml whose audit key is a software key file (the audit log's signer)."""
    key = generate_software_key("ed25519")
    (home / "audit.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (home / "siogw.toml").write_text(f'[audit]\nsigner_uri = "file:{home / "audit.key"}"\n')
    return SoftwareSigner(key)


def test_admin_bootstrap_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _gateway_key_config(tmp_path)
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=CLI Root")
    user = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(user, "CN=olga"), "user")
    (tmp_path / "olga.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    out = _siogw(tmp_path, "admin", "enroll-user", "--user-id", "olga", "--full-name", "Olga",
                 "--role", "operator", "--phone", "+77010000000",
                 "--cert", str(tmp_path / "olga.pem"))
    assert out.returncode == 0, out.stderr
    assert "enrolled" in out.stdout
    again = _siogw(tmp_path, "admin", "enroll-user", "--user-id", "olga", "--full-name", "O",
                   "--role", "operator")
    assert again.returncode == 8 and "exists already" in again.stderr

    # the rest in-process (same argparse tree and exit path, without interpreter start-ups)
    home = ["--home", str(tmp_path)]
    assert main(["admin", *home, "enroll-user", "--user-id", "x", "--full-name", "X",
                 "--role", "emperor"]) == 8
    assert "unknown role" in capsys.readouterr().err
    # a provider's compliance officer needs the provider's BIN (FM-1, issue 16)
    assert main(["admin", *home, "enroll-user", "--user-id", "co", "--full-name", "C",
                 "--role", "compliance_officer"]) == 8
    assert "provider_bin" in capsys.readouterr().err
    assert main(["admin", *home, "enroll-user", "--user-id", "co", "--full-name", "C",
                 "--role", "compliance_officer", "--provider-bin", "190340012348"]) == 0
    assert "enrolled as compliance_officer" in capsys.readouterr().out
    assert main(["admin", *home, "block", "--user-id", "olga"]) == 0
    serial = format(cert.serial_number, "x")
    assert main(["admin", *home, "revoke-cert", "--serial", serial]) == 0
    assert main(["admin", *home, "maintenance", "--starts", "2030-01-01T00:00:00+05:00",
                 "--ends", "2030-01-01T02:00:00+05:00", "--id", "mw1"]) == 0
    assert "+05:00" in capsys.readouterr().out

    store = Store(f"sqlite:///{tmp_path / 'siogw.db'}").open()
    try:
        assert not store.require_user("olga").active
        assert store.revocation(serial) is not None
        assert [w.id for w in store.windows()] == ["mw1"]
    finally:
        store.close()

    # every action, including the refused one, is in the audit log (R11)
    from audit.archive import iter_archive_records

    admin = [rec for _, rec in iter_archive_records(tmp_path / "audit") if rec.event == "admin"]
    # written ahead (server.writeahead): each command's request, then its outcome
    assert [(r.details["command"], r.outcome) for r in admin] == [
        (command, outcome)
        for command, done in [
            ("enroll_user", "success"), ("enroll_user", "failure"), ("enroll_user", "failure"),
            ("enroll_user", "failure"), ("enroll_user", "success"), ("block_user", "success"),
            ("revoke_certificate", "success"),
            ("publish_maintenance", "success"),
        ]
        for outcome in ("requested", done)
    ]
    assert all(r.actor == "siogw-admin" for r in admin)
    for request, outcome in zip(admin[::2], admin[1::2], strict=True):
        assert request.payload and outcome.details["request_seq"] == request.seq


def test_admin_changes_nothing_while_the_audit_log_is_held(tmp_path: Path) -> None:
    """With a gateway holding the log, the offline command refuses before acting."""
    from audit import AuditLog

    signer = _gateway_key_config(tmp_path)
    held = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/audit")
    try:
        out = _siogw(tmp_path, "admin", "maintenance", "--starts", "2030-01-01T00:00:00+05:00",
                     "--ends", "2030-01-01T02:00:00+05:00", "--id", "mw1")
    finally:
        held.close()
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "use the signed AdminService" in lines[0], out.stderr
    store = Store(f"sqlite:///{tmp_path / 'siogw.db'}").open()
    try:
        assert store.windows() == []
    finally:
        store.close()


def test_serve_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    CertificateAuthority.init(tmp_path / "ca", "CN=Serve Root")
    key = generate_software_key("ecdsa-p256-sha256")
    audit_key = generate_software_key("ed25519")
    for name, private in (("gw.key", key), ("audit.key", audit_key)):
        (tmp_path / name).write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    (tmp_path / "siogw.toml").write_text(
        '[server]\nseed_dataset = true\n'
        f'[signer]\nuri = "file:{tmp_path / "gw.key"}"\n'
        f'[audit]\nsigner_uri = "file:{tmp_path / "audit.key"}"\n'
        f'[trust]\nanchors = ["{tmp_path / "ca" / "root.pem"}"]\n'
    )
    env = {**os.environ, "SIOGW_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "siogw", "serve", "--insecure", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on .*:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        port = int(match.group(1))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            got = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="siogw.v1.QueryService"), timeout=10)
            assert got.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "shutting down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "audit").is_dir()
    # seed_dataset = true loaded the synthetic registers into the default SQLite database
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'siogw.db'}")
    try:
        assert "res_meta" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
