"""Config loading, the control-plane store (SQLite and PostgreSQL), the error mapping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2

from server.config import Limits, load_config
from server.errors import (
    BasisNotAllowed,
    ConsentRequired,
    MessageTooLarge,
    StaleRequest,
    UnderMaintenance,
    error_info,
    status_code_for,
    to_status,
)
from server.store import Store
from server.store.certificates import normalize_serial
from server.store.errors import CertificateInUse, DuplicateUser, ReplayDetected
from server.store.schema import SCHEMA_VERSION
from signing.errors import BadSignature, CertificateRevoked, MalformedEnvelope
from siogw_api.errors import ConfigError, InputError
from siogw_api.timeutil import now_utc


# --- config --------------------------------------------------------------------------------
def test_defaults_document_the_limits(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    assert cfg.limits == Limits()
    assert cfg.limits.max_message_bytes == 256 * 1024
    assert cfg.limits.clock_skew_seconds == 120
    assert cfg.limits.session_ttl_seconds == 15 * 60
    assert cfg.limits.challenge_ttl_seconds == 120
    assert cfg.tls.enabled
    assert cfg.effective_database_url == f"sqlite:///{tmp_path / 'siogw.db'}"


def test_toml_then_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "siogw.toml").write_text(
        '[server]\nport = 9000\n[tls]\ncert_file = "tls/s.pem"\n'
        '[limits]\nclock_skew_seconds = 30\n[signer]\nuri = "pkcs11:token=gw"\n'
        'pin_source = "file:pin.txt"\n'
    )
    cfg = load_config(tmp_path, env={"SIOGW_PORT": "9100", "SIOGW_SESSION_TTL_SECONDS": "60"})
    assert cfg.port == 9100
    assert cfg.limits.clock_skew_seconds == 30
    assert cfg.limits.session_ttl_seconds == 60
    assert cfg.tls.cert_file == tmp_path / "tls" / "s.pem"
    assert cfg.signer.pin_source == f"file:{tmp_path / 'pin.txt'}"
    with pytest.raises(AttributeError):
        cfg.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "[server]\nport = 'x'\n",
        "[limits]\nbogus = 1\n",
        "not toml = = =",
        "[limits]\nmax_message_bytes = 10\n",
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "siogw.toml").write_text(text)
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={})


# --- store ---------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "pg"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'cp.db'}").open()
        yield s
        s.close()
        return
    from tests.server.conftest import fresh_pg_url

    url, drop = fresh_pg_url(request.getfixturevalue("pg_url"))
    s = Store(url).open()
    yield s
    s.close()
    drop()


def test_schema_is_versioned_and_reopen_is_idempotent(store: Store) -> None:
    assert store.version() == SCHEMA_VERSION
    store.open()
    assert store.version() == SCHEMA_VERSION


def test_replay_guard_is_durable(store: Store) -> None:
    store.claim_request_id("r-1", user_id="u", kind="query")
    with pytest.raises(ReplayDetected):
        store.claim_request_id("r-1", user_id="u", kind="query")
    again = Store(store.url).open()
    with pytest.raises(ReplayDetected):
        again.claim_request_id("r-1", user_id="other", kind="query")
    again.close()


def test_users_sessions_block_and_revoke(store: Store) -> None:
    store.add_user(user_id="u1", full_name="A", role="agency_user", phone="+77010000000")
    with pytest.raises(DuplicateUser):
        store.add_user(user_id="u1", full_name="A", role="agency_user")
    store.add_user(user_id="u2", full_name="B", role="agency_user")
    store.register_certificate("u1", b"cert-1", serial_hex="0A", key_id="k1")
    with pytest.raises(CertificateInUse):
        store.register_certificate("u2", b"cert-1", serial_hex="0a", key_id="k1")
    later = now_utc() + dt.timedelta(minutes=5)
    from server.store.certificates import fingerprint

    store.create_session(token_hash="h1", user_id="u1", cert_fingerprint=fingerprint(b"cert-1"),
                         factor="sms", expires_at=later)
    assert store.get_session("h1").ended_at is None  # type: ignore[union-attr]
    store.set_user_status("u1", "blocked", "dismissed")
    assert store.get_session("h1").ended_at is not None  # type: ignore[union-attr]
    assert not store.require_user("u1").active

    store.create_session(token_hash="h2", user_id="u1", cert_fingerprint=fingerprint(b"cert-1"),
                         factor="sms", expires_at=later)
    revs = store.revoke("0x0a", "keyCompromise")
    assert [r.serial_hex for r in revs] == ["a"]
    assert store.get_session("h2").ended_at is not None  # type: ignore[union-attr]
    assert store.revocation("a") is not None
    assert store.revoke("A", "other") == revs  # idempotent: the first entry wins


def test_maintenance_windows(store: Store) -> None:
    now = now_utc()
    store.add_window(window_id="w1", starts_at=now - dt.timedelta(minutes=1),
                     ends_at=now + dt.timedelta(minutes=5), description="upgrade")
    store.add_window(window_id="w0", starts_at=now - dt.timedelta(hours=2),
                     ends_at=now - dt.timedelta(hours=1), description="past")
    assert store.current_window(now).id == "w1"  # type: ignore[union-attr]
    assert [w.id for w in store.windows(not_ended_before=now)] == ["w1"]
    with pytest.raises(InputError):
        store.add_window(window_id="bad", starts_at=now, ends_at=now, description="")


def test_serials_are_normalized() -> None:
    assert normalize_serial("00:0A:ff") == "aff"
    with pytest.raises(InputError):
        normalize_serial("xyz")


# --- the error mapping ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (BadSignature("x"), grpc.StatusCode.UNAUTHENTICATED),
        (CertificateRevoked("x", revoked_at=now_utc(), revocation_reason="keyCompromise",
                            serial=1), grpc.StatusCode.UNAUTHENTICATED),
        (MalformedEnvelope("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (BasisNotAllowed("x"), grpc.StatusCode.PERMISSION_DENIED),
        (ConsentRequired("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (StaleRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (ReplayDetected("x"), grpc.StatusCode.ALREADY_EXISTS),
        (UnderMaintenance("x"), grpc.StatusCode.UNAVAILABLE),
        (MessageTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (InputError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (RuntimeError("boom"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_codes(exc: BaseException, code: grpc.StatusCode) -> None:
    assert status_code_for(exc) is code


def test_status_carries_error_info_and_hides_internal_details() -> None:
    status = to_status(ReplayDetected("request id 'r' was used before"), request_id="abc")
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    info = error_info(rich)
    assert info is not None and info.domain == "siogw" and info.reason == "REPLAY"
    assert info.metadata["request_id"] == "abc"
    internal = to_status(RuntimeError("secret path /etc/x"), request_id="r9")
    assert "secret" not in internal.details and "r9" in internal.details
