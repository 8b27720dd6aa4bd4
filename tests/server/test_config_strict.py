"""Configuration that fails closed (issue 13, defects 1-4).

1. an unknown key (``[trust] crl`` for ``crls``, ``seed_datset``) refuses to start;
2. an unknown section (``[trsut]``) refuses to start, and so does no trust anchor at all;
3. a configured CRL file that is missing refuses to start (it used to disable CRL checks);
4. ``siogw.db`` and everything else the gateway creates under its home is 0600 / 0700
   whatever the umask.

Plus: a CRL that goes stale while running makes health NOT_SERVING and every
certificate check fails closed with ``STALE_CRL``. The refuse-to-start cases run
``siogw serve`` as a subprocess and check its one line on stderr.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server.certcheck import TrustMaterial
from server.config import known_settings, load_config
from server.files import private_dir, private_file
from server.sms import OutboxSmsSender
from server.status import HealthUpdater
from server.store import Store
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.errors import CertificateRevoked, StaleCRL
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.errors import ConfigError
from siogw_api.timeutil import now_utc


# --- helpers -------------------------------------------------------------------------------
@pytest.fixture
def wide_umask() -> Iterator[None]:
    """The default umask of many systems (files 0644): the gateway must not rely on it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _home(tmp_path: Path, trust: str | None = None, extra: str = "") -> Path:
    """A home with a CA (root + CRL), a software gateway key and a siogw.toml."""
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Strict Root")
    ca.publish_crl()
    key = generate_software_key("ecdsa-p256-sha256")
    (tmp_path / "gw.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    audit_key = generate_software_key("ed25519")
    (tmp_path / "audit.key").write_bytes(audit_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    if trust is None:
        trust = '[trust]\nanchors = ["ca/root.pem"]\ncrls = ["ca/crl.pem"]\n'
    (tmp_path / "siogw.toml").write_text(
        f'[signer]\nuri = "file:{tmp_path / "gw.key"}"\n'
        f'[audit]\nsigner_uri = "file:{tmp_path / "audit.key"}"\n{trust}{extra}'
    )
    return tmp_path


def _serve_refused(home: Path) -> str:
    """Run ``siogw serve``; it must exit 2 (ConfigError) with one line on stderr."""
    out = subprocess.run(
        [sys.executable, "-m", "siogw", "serve", "--insecure", "--port", "0"],
        env={**os.environ, "SIOGW_HOME": str(home)}, capture_output=True, text=True,
        timeout=60,
    )
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "listening" not in out.stdout
    return lines[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- defect 1: unknown keys ----------------------------------------------------------------
def test_defect1_a_misspelt_crls_key_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path, trust='[trust]\nanchors = ["ca/root.pem"]\ncrl = ["ca/crl.pem"]\n')
    line = _serve_refused(home)
    assert line.startswith("siogw: error: unknown key trust.crl (did you mean trust.crls?)")
    assert not (home / "siogw.db").exists() and not (home / "audit").exists()


def test_defect1_a_misspelt_server_key_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path, extra="[server]\nseed_datset = true\n")
    line = _serve_refused(home)
    assert "unknown key server.seed_datset (did you mean server.seed_dataset?)" in line


@pytest.mark.parametrize(("text", "message"), [
    ("[limits]\nmax_mesage_bytes = 4096\n",
     "unknown key limits.max_mesage_bytes (did you mean limits.max_message_bytes?)"),
    ("[tls]\nrequire_client_certs = true\n",
     "unknown key tls.require_client_certs (did you mean tls.require_client_cert?)"),
    ("[signer]\npin = \"1234\"\n", "unknown key signer.pin (did you mean signer.pin_source?)"),
    ("port = 8443\n", "unknown key port (did you mean server.port?)"),
    ("[trust.crls]\nx = 1\n", "trust.crls must be lists of paths"),  # a table, not a list
    ("[server]\nzzzzzz = 1\n", "unknown key server.zzzzzz in"),  # nothing near: no hint
])
def test_unknown_keys_name_the_key_and_the_nearest_valid_one(
    tmp_path: Path, text: str, message: str,
) -> None:
    (tmp_path / "siogw.toml").write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path, env={})
    assert message in ei.value.diagnostics()
    assert "\n" not in ei.value.diagnostics()


def test_overrides_are_checked_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key trust\.crl \(did you mean trust\.crls"):
        load_config(tmp_path, env={}, overrides={"trust": {"crl": ["x.pem"]}})


def test_every_documented_key_is_known(tmp_path: Path) -> None:
    """The known keys come from the dataclasses: every field of every section loads."""
    known = known_settings()
    assert {"server", "tls", "signer", "trust", "limits", "policy"} <= set(known)
    assert known["trust"] == {"anchors", "crls"}
    assert {"host", "port", "seed_dataset", "audit_dir", "sms_outbox"} <= known["server"]
    assert "home" not in known["server"]
    (tmp_path / "siogw.toml").write_text(
        '[server]\nhost = "127.0.0.1"\nport = 9000\nseed_dataset = false\nworkers = 1\n'
        'worker_threads = 0\ndatabase_url = ""\naudit_dir = "a"\nsms_outbox = "o.jsonl"\n'
        '[tls]\nenabled = false\ncert_file = "c"\nkey_file = "k"\nclient_ca_file = ""\n'
        'require_client_cert = false\n'
        '[signer]\nuri = "file:k"\npin_source = "env:X"\ncertificate = "c"\nsessions = 0\n'
        '[trust]\nanchors = ["r.pem"]\ncrls = ["c.pem"]\n'
        '[limits]\nmax_message_bytes = 4096\nhousekeeping_seconds = 0\n'
        '[policy]\nconsent_version = "v"\nconsent_text = "t"\n'
    )
    cfg = load_config(tmp_path, env={})
    assert cfg.port == 9000 and cfg.trust.crls == (tmp_path / "c.pem",)


# --- defect 2: unknown sections, no anchors ------------------------------------------------
def test_defect2_a_misspelt_trust_section_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path, trust='[trsut]\nanchors = ["ca/root.pem"]\n')
    line = _serve_refused(home)
    assert "unknown section [trsut] (did you mean [trust]?)" in line


def test_no_trust_anchors_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path, trust="")
    line = _serve_refused(home)
    assert "no trust anchors configured (trust.anchors)" in line
    assert not (home / "siogw.db").exists()


def test_no_signer_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path)
    text = (home / "siogw.toml").read_text()
    (home / "siogw.toml").write_text(re.sub(r'(?m)^uri = .*$', 'uri = ""', text))
    line = _serve_refused(home)
    assert "signer.uri is not set" in line


# --- defect 3: a configured CRL file that is missing ---------------------------------------
def test_defect3_a_missing_crl_file_refuses_to_start(tmp_path: Path) -> None:
    home = _home(tmp_path, trust='[trust]\nanchors = ["ca/root.pem"]\ncrls = ["ca/gone.crl"]\n')
    line = _serve_refused(home)
    assert f"cannot read CRL file {home / 'ca' / 'gone.crl'} (trust.crls)" in line


def test_a_crl_file_that_is_not_a_crl_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "bad.crl").write_text("not a CRL")
    with pytest.raises(ConfigError, match="is not a PEM or DER CRL"):
        TrustMaterial([], [tmp_path / "bad.crl"], None)


def test_a_crl_file_removed_while_running_keeps_its_last_good_copy(tmp_path: Path) -> None:
    """Removing the file must not switch revocation off (it used to)."""
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Strict Root")
    user = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(user, "CN=mallory"), "user")
    ca.revoke(cert.serial_number, "keyCompromise")
    ca.publish_crl()
    trust = TrustMaterial([tmp_path / "ca" / "root.pem"], [tmp_path / "ca" / "crl.pem"], None)
    with pytest.raises(CertificateRevoked):
        trust.validate(cert)
    (tmp_path / "ca" / "crl.pem").unlink()
    with pytest.raises(CertificateRevoked):
        trust.validate(cert)


# --- a CRL going stale while running -------------------------------------------------------
def _health(store: Store, trust: TrustMaterial) -> tuple[HealthUpdater, health.aio.HealthServicer]:
    servicer = health.aio.HealthServicer()
    return HealthUpdater(store, servicer, 1.0, trust_check=trust.check_crls_current), servicer


async def _status(servicer: health.aio.HealthServicer) -> int:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            got = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10)
            return int(got.status)
    finally:
        await server.stop(None)


def test_a_crl_gone_stale_makes_health_not_serving_and_checks_fail_closed(
    tmp_path: Path,
) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Strict Root")
    ca.publish_crl()
    user = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(user, "CN=olga"), "user")
    crl = tmp_path / "ca" / "crl.pem"
    trust = TrustMaterial([tmp_path / "ca" / "root.pem"], [crl], None)
    store = Store(f"sqlite:///{tmp_path / 'siogw.db'}").open()
    try:
        trust.validate(cert)  # current CRL: fine, and the chain is now cached
        updater, servicer = _health(store, trust)

        async def run() -> list[int]:
            seen = [int(await updater.refresh())]
            seen.append(await _status(servicer))
            # The CA's CRL passes its nextUpdate (an hour ago): written like a late CA.
            past = now_utc() - _dt.timedelta(hours=3)
            ca.publish_crl(next_update=_dt.timedelta(hours=1), now=past)
            os.utime(crl, (past.timestamp() + 7200, past.timestamp() + 7200))
            seen.append(int(await updater.refresh()))
            seen.append(await _status(servicer))
            return seen

        serving, status, stale, stale_status = asyncio.run(run())
        assert (serving, status) == (1, health_pb2.HealthCheckResponse.SERVING)
        assert (stale, stale_status) == (0, health_pb2.HealthCheckResponse.NOT_SERVING)
        with pytest.raises(StaleCRL) as ei:  # the cached chain fails closed too
            trust.validate(cert)
        assert ei.value.reason_code == "STALE_CRL"
        # A fresh CRL is picked up from the file without a restart.
        ca.publish_crl()
        assert asyncio.run(updater.refresh()) is True
        trust.validate(cert)
    finally:
        store.close()


# --- defect 4: file modes ------------------------------------------------------------------
def test_defect4_the_database_is_0600_whatever_the_umask(tmp_path: Path, wide_umask: None) -> None:
    db = tmp_path / "home" / "siogw.db"
    store = Store(f"sqlite:///{db}").open()
    try:
        with store.engine.begin() as conn:  # a write: -wal and -shm exist now
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        for path in (db, db.with_name("siogw.db-wal"), db.with_name("siogw.db-shm")):
            assert path.exists() and _mode(path) == 0o600, path
        assert _mode(db.parent) == 0o700
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "siogw.db"
    db.touch()
    os.chmod(db, 0o644)
    Store(f"sqlite:///{db}").open().close()
    assert _mode(db) == 0o600


def test_the_sms_outbox_is_0600_in_a_0700_directory(tmp_path: Path, wide_umask: None) -> None:
    sender = OutboxSmsSender(tmp_path / "out" / "sms-outbox.jsonl")
    sender.send("+77010000001", "code: 123456")
    assert _mode(tmp_path / "out" / "sms-outbox.jsonl") == 0o600
    assert _mode(tmp_path / "out") == 0o700


def test_private_file_refuses_a_symlink_and_private_dir_a_file(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(ConfigError):
        private_file(tmp_path / "link")
    with pytest.raises(ConfigError, match="cannot create directory"):
        private_dir(tmp_path / "target")


@pytest.mark.slow
def test_defect4_siogw_serve_creates_everything_private(tmp_path: Path) -> None:
    """Under umask 022, ``siogw serve`` leaves nothing group- or world-readable."""
    home = _home(tmp_path / "home")
    os.chmod(home, 0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "siogw", "serve", "--insecure", "--port", "0"],
        env={**os.environ, "SIOGW_HOME": str(home)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.umask(0o022),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, line + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _mode(home) == 0o700
    assert _mode(home / "siogw.db") == 0o600
    given = {"siogw.toml", "gw.key", "audit.key"}  # written by the test, not the gateway
    created = [p for p in home.rglob("*")
               if p.name not in given and "ca" not in p.relative_to(home).parts]
    assert home / "siogw.db" in created and home / "audit" in created
    for path in created:
        want = 0o700 if path.is_dir() else 0o600
        assert _mode(path) & ~want == 0, (path, oct(_mode(path)))
