"""Fixtures of the gateway tests: a test CA, SoftHSM token users, a running gateway.

``gateway`` (module scope, parametrised over SQLite and PostgreSQL) starts the real
``grpc.aio`` server over TLS on a free port in a background event loop, with:

* a test CA (``signing.ca``) whose root is the trust anchor and whose CRL is configured;
  the TLS server certificate is issued by the same CA tooling (server profile);
* the gateway's signing key on its own SoftHSM token, and the real ``audit.AuditLog``;
* users enrolled with EC keys on their own SoftHSM tokens and certificates from the CA:
  ``alice`` (agency user, SMS + biometric), ``bob`` (agency user, SMS), ``olga``
  (operator), ``sam`` (security officer), ``carl`` and ``dina`` (agency users that the
  tests block and revoke).

Tests talk to it through synchronous gRPC stubs over a TLS channel (:class:`Harness`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_status import rpc_status

from server.errors import error_info
from signing import dsse
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    query_pb2,
    query_pb2_grpc,
)


def fresh_pg_url(base_url: str) -> tuple[str, Callable[[], None]]:
    """A URL whose connections use a new, empty schema; and a function dropping it."""
    schema = f"siogw_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return url, drop


def pg_test_url() -> tuple[str, Callable[[], None]]:
    """A fresh-schema PostgreSQL URL from ``SIOGW_TEST_PG_URL`` and its drop function.

    Skips without the variable; under ``CI=true`` its absence is a failure instead.
    """
    url = os.environ.get("SIOGW_TEST_PG_URL")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("SIOGW_TEST_PG_URL is not set under CI=true")
        pytest.skip("SIOGW_TEST_PG_URL not set")
    return fresh_pg_url(url)


@pytest.fixture(params=["sqlite", "pg"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An opened control-plane ``Store`` on SQLite and on a fresh PostgreSQL schema (a
    module may define its own ``store`` instead)."""
    from server.store import Store

    drop = None
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "pg":
        url, drop = pg_test_url()
    opened = Store(url).open()
    try:
        yield opened
    finally:
        opened.close()
        if drop is not None:
            drop()


# --- tokens and certificates ---------------------------------------------------------------
def make_token_signer(
    store: Any, directory: Path, prefix: str, ca: Any = None, *, key_type: str = "ec"
) -> Any:
    """A new SoftHSM token with an EC P-256 key (or ``key_type``, e.g. ``ed25519`` for an
    audit key); certified by ``ca`` when given."""
    from signing.csr import build_csr
    from signing.pkcs11_signer import Pkcs11Signer
    from signing.pkcs11_token import Pkcs11Token
    from signing.uri import Pkcs11URI

    label = f"{prefix}-{secrets.token_hex(5)}"[:32]
    pin, so_pin = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    pin_file = directory / f"{label}.pin"
    pin_file.write_text(pin)
    pin_file.chmod(0o600)
    store.init_token(label, so_pin, pin)
    source = f"file:{pin_file}"
    Pkcs11Token(label, pin_source=source).generate_keypair(key_type, "key")
    uri = str(Pkcs11URI(token=label, object="key", type="private", pin_source=source))
    signer = Pkcs11Signer(uri)
    if ca is None:
        return signer
    cert = ca.issue(build_csr(signer, f"CN={prefix},O=AFM test,C=KZ"), "user", 30)
    return Pkcs11Signer(uri, certificate=cert)


@dataclass
class User:
    user_id: str
    role: str
    signer: Any
    phone: str = ""
    device: Any = None
    sample: bytes = b""

    @property
    def cert(self) -> x509.Certificate:
        cert = self.signer.certificate
        assert cert is not None
        return cert  # type: ignore[no-any-return]

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


# --- a server in a background loop ---------------------------------------------------------
class ServerThread:
    """Runs :func:`server.app.run_server` in its own event loop thread."""

    def __init__(self, config: Any, gateway: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._cm: Any = None
        self.config, self.gateway = config, gateway

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> int:
        from server.app import run_server

        async def start() -> int:
            self._cm = run_server(self.config, gateway=self.gateway)
            return int(await self._cm.__aenter__())

        return int(self.run(start()))

    def stop(self) -> None:
        """Stop the server and the loop; a second call does nothing."""
        if not self.thread.is_alive():
            return
        if self._cm is not None:
            cm, self._cm = self._cm, None
            self.run(cm.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# --- the harness ---------------------------------------------------------------------------
@dataclass
class Harness:
    home: Path
    port: int
    root_pem: bytes
    ca: Any
    gateway: Any
    server: ServerThread
    users: dict[str, User]
    channel: grpc.Channel = field(init=False)
    sessions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channel = self.new_channel()
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.query = query_pb2_grpc.QueryServiceStub(self.channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)

    def new_channel(self, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(root_certificates=self.root_pem)
        opts = [("grpc.max_send_message_length", 16 * 1024 * 1024), *(options or [])]
        return grpc.secure_channel(f"localhost:{self.port}", creds, options=opts)

    # -- login ------------------------------------------------------------------------------
    def sms_codes(self, phone: str) -> list[str]:
        outbox = self.home / "sms-outbox.jsonl"
        if not outbox.exists():
            return []
        msgs = [json.loads(line) for line in outbox.read_text().splitlines() if line]
        return [m["text"].split("code: ")[1][:6] for m in msgs if m["to"] == phone]

    def begin_and_prove(
        self, user: User, factor: int = auth_pb2.SECOND_FACTOR_SMS, signer: Any = None
    ) -> tuple[str, auth_pb2.ProveLoginResponse]:
        begun = self.auth.BeginLogin(
            auth_pb2.BeginLoginRequest(user_id=user.user_id, certificate_der=user.cert_der)
        )
        env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, signer or user.signer)
        proved = self.auth.ProveLogin(
            auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env,
                                       factor=factor)
        )
        return begun.login_id, proved

    def login(self, user: User, factor: str = "sms") -> auth_pb2.CompleteLoginResponse:
        if factor == "sms":
            login_id, _ = self.begin_and_prove(user)
            code = self.sms_codes(user.phone)[-1]
            return self.auth.CompleteLogin(
                auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=code)
            )
        login_id, proved = self.begin_and_prove(user, auth_pb2.SECOND_FACTOR_BIOMETRIC)
        a = user.device.assert_user(proved.device_challenge, user.sample)
        return self.auth.CompleteLogin(
            auth_pb2.CompleteLoginRequest(
                login_id=login_id,
                biometric=auth_pb2.BiometricAssertion(
                    device_key_id=a.device_key_id, signature=a.signature, method=a.method
                ),
            )
        )

    def consent(self, user: User, token: str) -> auth_pb2.SignConsentResponse:
        text = self.auth.GetConsent(auth_pb2.GetConsentRequest())
        payload = json.dumps(
            {"version": text.version, "sha256": bytes(text.sha256).hex(),
             "user_id": user.user_id, "signed_at": astana_iso()},
            sort_keys=True, separators=(",", ":"),
        ).encode()
        return self.auth.SignConsent(
            auth_pb2.SignConsentRequest(consent=sign(dsse.PAYLOAD_CONSENT, payload, user.signer)),
            metadata=bearer(token),
        )

    def session(self, name: str, *, consent: bool = True) -> str:
        """A cached logged-in (and consented) session token for a user."""
        if name not in self.sessions:
            user = self.users[name]
            token = self.login(user).session_token
            if consent:
                self.consent(user, token)
            self.sessions[name] = token
        return self.sessions[name]

    # -- queries ----------------------------------------------------------------------------
    def query_request(
        self, user: User, *, signer: Any = None, **fields: Any
    ) -> tuple[query_pb2.QueryRequest, query_pb2.Query]:
        from server.resources.dataset import DEMO_PERSON_IIN

        values: dict[str, Any] = {
            "request_id": secrets.token_hex(8),
            "resource": 1,
            "parameters": {"iin": DEMO_PERSON_IIN},
            "basis": "financial_monitoring",
            "task_ref": "TASK-2026-001",
            "justification": "check of a reported suspicious operation",
            "created_at": astana_iso(),
        }
        values.update(fields)
        q = query_pb2.Query(**values)
        env = sign(dsse.PAYLOAD_QUERY, q.SerializeToString(deterministic=True),
                   signer or user.signer)
        return query_pb2.QueryRequest(envelope=env), q

    def send_query(self, name: str, **fields: Any) -> query_pb2.QueryResponse:
        req, _ = self.query_request(self.users[name], **fields)
        return self.query.Query(req, metadata=bearer(self.session(name)))

    def admin_request(self, user: User, **command: Any) -> admin_pb2.AdminRequest:
        cmd = admin_pb2.AdminCommand(
            request_id=secrets.token_hex(8), created_at=astana_iso(), **command
        )
        env = sign(dsse.PAYLOAD_ADMIN, cmd.SerializeToString(deterministic=True), user.signer)
        return admin_pb2.AdminRequest(envelope=env)

    # -- the audit log ----------------------------------------------------------------------
    def audit_records(self) -> list[Any]:
        from audit.archive import iter_archive_records

        return [rec for _, rec in iter_archive_records(self.home / "audit")]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def sign(payload_type: str, payload: bytes, signer: Any) -> common_pb2.Envelope:
    env = dsse.sign_envelope(payload_type, payload, signer)
    f = env.to_proto_fields()
    return common_pb2.Envelope(
        payload_type=f["payload_type"], payload=f["payload"],
        signatures=[common_pb2.Signature(**s) for s in f["signatures"]],
    )


def rpc_error(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, str]:
    """Run a call expected to fail; returns (code, ErrorInfo reason, message)."""
    with pytest.raises(grpc.RpcError) as ei:
        call()
    err: Any = ei.value
    status = rpc_status.from_call(err)
    reason = ""
    if status is not None:
        info = error_info(status)
        assert info is not None and info.domain == "siogw"
        reason = info.reason
    return err.code(), reason, err.details()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the fixture ---------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "pg"])
def gateway(
    request: pytest.FixtureRequest, softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:

    from audit import AuditLog
    from clients.biometric import SoftwareDeviceKey
    from server.admin import execute
    from server.assembly import build_gateway, keep_checkpoints
    from server.config import load_config
    from server.resources.dataset import seed_dataset
    from server.store import Store
    from signing.ca import CertificateAuthority
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key

    drop: Callable[[], None] | None = None
    if request.param == "pg":
        db_url, drop = pg_test_url()
    home = tmp_path_factory.mktemp(f"gw-{request.param}")
    secrets_dir = home / "secrets"
    secrets_dir.mkdir()
    ca = CertificateAuthority.init(home / "ca", "CN=Test NCA Root,C=KZ")
    ca.publish_crl()
    tls_key = generate_software_key("ecdsa-p256-sha256")
    tls_cert = ca.issue(
        build_csr(SoftwareSigner(tls_key), "CN=localhost", dns_names=["localhost"]), "server"
    )
    (home / "tls").mkdir()
    (home / "tls" / "server.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))
    (home / "tls" / "server.key").write_bytes(
        tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    )
    root_pem = ca.root_certificate.public_bytes(serialization.Encoding.PEM)
    (home / "root.pem").write_bytes(root_pem)
    server_cfg: dict[str, Any] = {"port": 0, "host": "127.0.0.1"}
    if drop is not None:
        server_cfg["database_url"] = db_url
    config = load_config(home, env={}, overrides={
        "server": server_cfg,
        "tls": {"cert_file": "tls/server.pem", "key_file": "tls/server.key"},
        "trust": {"anchors": ["root.pem"], "crls": [str(home / "ca" / "crl.pem")]},
        # Every test logs in from 127.0.0.1: the BeginLogin rate limits are raised so the
        # suite's own logins never meet them (tests/server/test_auth_abuse.py tests them).
        "limits": {"health_poll_seconds": 0.2, "anonymous_refusal_burst": 100000,
                   "logins_per_peer_per_minute": 100_000,
                   "logins_per_user_per_minute": 100_000},
        # a test module may add sections of its own (test_tracing.py: [tracing])
        **getattr(request.module, "GATEWAY_CONFIG", {}),
    })

    gw_signer = make_token_signer(softhsm_store, secrets_dir, "gateway", ca)
    store = Store(config.effective_database_url).open()
    seed_dataset(store.engine)
    # The audit key is a key of its own (Ed25519, as SoftHSM has it); each checkpoint the
    # log signs is also kept in the database (issue 12).
    audit_signer = make_token_signer(softhsm_store, secrets_dir, "audit", key_type="ed25519")
    audit_log = AuditLog.open(home / "audit", audit_signer, "sio-gateway/test",
                              on_checkpoint=keep_checkpoints(store))
    gw = build_gateway(config, signer=gw_signer, store=store, audit_log=audit_log)

    users: dict[str, User] = {}
    specs = [
        ("alice", "agency_user", "+77010000001", True),
        ("bob", "agency_user", "+77010000002", False),
        ("olga", "operator", "+77010000003", False),
        ("sam", "security_officer", "+77010000004", False),
        ("carl", "agency_user", "+77010000005", False),
        ("dina", "agency_user", "+77010000006", False),
    ]
    for name, role, phone, bio in specs:
        signer = make_token_signer(softhsm_store, secrets_dir, name, ca)
        user = User(name, role, signer, phone)
        if bio:
            user.sample = secrets.token_bytes(16)
            user.device = SoftwareDeviceKey.enroll(secrets_dir / f"{name}.dev", user.sample)
        command = admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=name, full_name=name.title(), role=role, phone=phone,
            certificate_der=user.cert_der,
            device_public_key_der=user.device.public_key_der if user.device else b"",
        ))
        execute(None, store, command)
        users[name] = user

    srv = ServerThread(config, gw)
    port = srv.start()
    harness = Harness(home=home, port=port, root_pem=root_pem, ca=ca, gateway=gw, server=srv,
                      users=users)
    try:
        yield harness
    finally:
        harness.channel.close()
        srv.stop()
        if drop is not None:
            drop()


def now_iso() -> str:
    return astana_iso(now_utc())
