"""Authentication and abuse (issue 13, defects 9-13) over the real gateway.

One server per backend (SQLite, PostgreSQL) for the module (``tests/server/conftest.py``).
Each test works on users or user ids no other test of the module relies on.
"""

from __future__ import annotations

import datetime as dt
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from server.auth import MAX_LOGIN_CERT_BYTES, OFFERED_FACTORS
from server.ratelimit import RateLimiter, peer_host
from signing import dsse
from signing.api import CERTIFICATE_FACTS, certificate_key_id, key_id_for
from siogw_api.v1 import admin_pb2, auth_pb2, common_pb2, query_pb2
from tests.server.conftest import Harness, bearer, rpc_error

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def self_signed_der(name: str, *, padding: int = 0) -> bytes:
    """A parsable self-signed certificate (not issued by the test CA), ``padding`` bytes
    of a non-critical private extension making it as large as wanted."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if padding:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x82" +
                padding.to_bytes(2, "big") + secrets.token_bytes(padding)),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def begin(gw: Harness, user_id: str, cert_der: bytes) -> auth_pb2.BeginLoginResponse:
    return gw.auth.BeginLogin(  # type: ignore[no-any-return]
        auth_pb2.BeginLoginRequest(user_id=user_id, certificate_der=cert_der)
    )


# --- defect 9: a neutral factor list; BeginLogin audited, limited and bounded ------------
def test_begin_login_answers_the_same_factors_whoever_asks(gateway: Harness) -> None:
    alice, bob = gateway.users["alice"], gateway.users["bob"]
    with_device = begin(gateway, "alice", alice.cert_der).factors
    without_device = begin(gateway, "bob", bob.cert_der).factors
    unknown = begin(gateway, f"nobody-{secrets.token_hex(3)}", bob.cert_der).factors
    assert list(with_device) == list(without_device) == list(unknown) == list(OFFERED_FACTORS)


def test_biometric_without_a_device_is_refused_like_a_wrong_assertion(
    gateway: Harness,
) -> None:
    """bob has no device: he is refused exactly as alice with a foreign device key."""
    alice, bob = gateway.users["alice"], gateway.users["bob"]
    refusals = []
    for user in (alice, bob):
        login_id, proved = gateway.begin_and_prove(user, auth_pb2.SECOND_FACTOR_BIOMETRIC)
        assert len(proved.device_challenge) == 32
        req = auth_pb2.CompleteLoginRequest(
            login_id=login_id,
            biometric=auth_pb2.BiometricAssertion(
                device_key_id="not-an-enrolled-key", signature=b"\x30\x00",
                method="face"),
        )
        refusals.append(rpc_error(lambda req=req: gateway.auth.CompleteLogin(req)))
    assert refusals[0] == refusals[1]
    assert refusals[0][:2] == (UNAUTH, "LOGIN_FAILED")


def test_begin_login_is_recorded_with_the_claimed_user(gateway: Harness) -> None:
    claimed = f"claim-{secrets.token_hex(4)}"
    begun = begin(gateway, claimed, gateway.users["bob"].cert_der)
    records = [r for r in gateway.audit_records() if r.event == "login.begin"
               and r.details.get("claimed_user") == claimed]
    assert len(records) == 1
    assert records[0].actor == "anonymous"
    assert records[0].details["login_id"] == begun.login_id


def test_begin_login_refuses_a_large_certificate_and_stores_nothing(gateway: Harness) -> None:
    claimed = f"big-{secrets.token_hex(4)}"
    big = self_signed_der("big", padding=MAX_LOGIN_CERT_BYTES)
    assert len(big) > MAX_LOGIN_CERT_BYTES
    code, _, message = rpc_error(lambda: begin(gateway, claimed, big))
    assert code == INVALID and str(MAX_LOGIN_CERT_BYTES) in message
    assert gateway.gateway.store.open_logins(claimed) == 0
    long_id = "u" * 65
    assert rpc_error(lambda: begin(gateway, long_id, gateway.users["bob"].cert_der))[0] == INVALID


def test_open_logins_per_user_are_capped(gateway: Harness) -> None:
    cap = gateway.gateway.config.limits.open_logins_per_user
    claimed = f"flood-{secrets.token_hex(4)}"
    cert = self_signed_der("flood")
    for _ in range(cap):
        begin(gateway, claimed, cert)
    code, reason, _ = rpc_error(lambda: begin(gateway, claimed, cert))
    assert (code, reason) == (EXHAUSTED, "RATE_LIMITED")
    assert gateway.gateway.store.open_logins(claimed) == cap
    refused = [r for r in gateway.audit_records()
               if r.event == "refusal" and r.details.get("claimed_user") == claimed]
    assert refused and refused[-1].details["reason"] == "RATE_LIMITED"


def test_rate_limiter_counts_a_sliding_window_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")
    now[0] = 59.0
    assert not limiter.allow("a")
    now[0] = 60.5  # the first three fell out of the window
    assert limiter.allow("a")


def test_rate_limiter_is_bounded_in_keys_and_fails_closed() -> None:
    now = [0.0]
    limiter = RateLimiter(1, 60.0, max_keys=2, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("c")  # full of live keys: refused, not let through
    now[0] = 61.0
    assert limiter.allow("c")  # stale keys evicted
    assert len(limiter) <= 2


@given(st.text(max_size=80))
def test_peer_host_never_fails_and_keeps_a_prefix(peer: str) -> None:
    host = peer_host(peer)
    assert peer.startswith(host) and (host or not peer)


@given(st.lists(st.sampled_from("abcdefgh"), max_size=60),
       st.lists(st.floats(0, 200), max_size=60))
def test_rate_limiter_never_allows_more_than_the_limit_in_a_window(
    keys: list[str], steps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(3, 10.0, max_keys=4, clock=lambda: now[0])
    allowed: dict[str, list[float]] = {}
    for key, step in zip(keys, steps + [0.0] * len(keys), strict=False):
        now[0] += step / 20
        if limiter.allow(key):
            allowed.setdefault(key, []).append(now[0])
        times = [t for t in allowed.get(key, []) if t > now[0] - 10.0]
        assert len(times) <= 3
        assert len(limiter) <= 4


def test_peer_host_drops_the_port() -> None:
    assert peer_host("ipv4:127.0.0.1:5555") == "ipv4:127.0.0.1"
    assert peer_host("ipv6:[::1]:5555") == "ipv6:[::1]"
    assert peer_host("unix:/tmp/sock") == "unix:/tmp/sock"


# --- defect 11: atomic SMS attempt counting ----------------------------------------------
@pytest.mark.slow
def test_parallel_wrong_codes_compare_at_most_the_limit(gateway: Harness) -> None:
    carl = gateway.users["carl"]
    limit = gateway.gateway.config.limits.sms_max_attempts
    login_id, _ = gateway.begin_and_prove(carl)
    code = gateway.sms_codes(carl.phone)[-1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    req = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=wrong)
    calls = 8 * limit

    def one(_: int) -> Any:
        return rpc_error(lambda: gateway.auth.CompleteLogin(req))

    with ThreadPoolExecutor(max_workers=calls) as pool:
        results = list(pool.map(one, range(calls)))
    failed = [r for r in results if r[1] == "LOGIN_FAILED"]
    locked = [r for r in results if r[1] == "LOGIN_LOCKED"]
    assert len(failed) + len(locked) == calls
    # Each LOGIN_FAILED compared a code, and so did the one call that used the last try.
    assert len(failed) <= limit - 1
    login = gateway.gateway.store.get_login(login_id)
    assert login is not None and login.attempts <= limit and login.state == "locked"
    right = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=code)
    assert rpc_error(lambda: gateway.auth.CompleteLogin(right))[:2] == (DENIED, "LOGIN_LOCKED")


# --- defect 10: nothing parsed or cached for an unauthenticated caller -------------------
def _caches(gw: Harness) -> tuple[int, int, int, int]:
    return (dsse.CERTIFICATE_CACHE.bytes_used, dsse.PEM_CACHE.bytes_used,
            CERTIFICATE_FACTS.bytes_used, gw.gateway.trust.cache.bytes_used)


def test_unauthenticated_queries_leave_no_certificate_in_any_cache(gateway: Harness) -> None:
    before = _caches(gateway)
    for i in range(30):
        env = common_pb2.Envelope(
            payload_type=dsse.PAYLOAD_QUERY, payload=b"x",
            signatures=[common_pb2.Signature(
                keyid="0" * 64, sig=b"\x30\x00",
                cert_der=self_signed_der(f"stranger{i}", padding=4000))],
        )
        code, _, _ = rpc_error(lambda env=env: gateway.query.Query(
            query_pb2.QueryRequest(envelope=env), metadata=bearer("not-a-session")))
        assert code == UNAUTH
    assert _caches(gateway) == before


def test_the_envelope_caches_are_bounded_in_bytes() -> None:
    """Many distinct embedded certificates: the caches stay within their byte bounds."""
    for i in range(200):
        der = self_signed_der(f"signer{i}", padding=3000)
        envelope = dsse.Envelope(
            payload_type=dsse.PAYLOAD_QUERY, payload=b"x",
            signatures=(dsse.EnvSig(keyid="", sig=b"s", cert_der=der),),
        )
        dsse.encode_envelope(envelope)
        cert = envelope.signatures[0].certificate
        assert cert is not None
        assert certificate_key_id(cert) == key_id_for(cert.public_key())  # type: ignore[arg-type]
        for cache in (dsse.CERTIFICATE_CACHE, dsse.PEM_CACHE, CERTIFICATE_FACTS):
            assert cache.bytes_used <= cache.max_bytes
    assert len(dsse.CERTIFICATE_CACHE) < 200
    huge = self_signed_der("huge", padding=20_000)
    before = len(dsse.PEM_CACHE)
    dsse.encode_envelope(dsse.Envelope(
        payload_type=dsse.PAYLOAD_QUERY, payload=b"x",
        signatures=(dsse.EnvSig(keyid="", sig=b"s", cert_der=huge),)))
    assert dsse.PEM_CACHE.get(huge) is None and dsse.CERTIFICATE_CACHE.get(huge) is None
    assert len(dsse.PEM_CACHE) <= before


# --- defect 12: who may block whom, on AdminService's store path too ----------------------
def test_admin_service_keeps_the_rules_of_who_may_block_whom(gateway: Harness) -> None:
    olga, sam = gateway.users["olga"], gateway.users["sam"]  # olga: the only operator
    sam_token = gateway.session("sam", consent=False)
    olga_token = gateway.session("olga", consent=False)
    for actor, token, target, why in (
        (sam, sam_token, "olga", "security_officer may not block"),
        (olga, olga_token, "olga", "themselves"),
    ):
        req = gateway.admin_request(actor, block_user=admin_pb2.BlockUser(
            user_id=target, reason="test"))
        code, _, message = rpc_error(
            lambda req=req, token=token: gateway.admin.Execute(req, metadata=bearer(token)))
        assert code == DENIED and why in message
        assert gateway.gateway.store.require_user("olga").active
