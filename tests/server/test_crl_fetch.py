"""Issue 17, point 4: CRLs fetched from their distribution points (server.crlfetch).

Every test runs against a real HTTP server on 127.0.0.1 (``http.server`` in a thread)
serving the CRL files the test CA (``siogw ca``) publishes, with certificates that name
that server as their cRLDistributionPoint: first fetch and refresh, an outage within and
past ``[crl] grace``, a forged and a replayed older CRL refused, a newer CRL (a revoked
analyst) taking effect on the next call, a slow server cut by the deadline, the disk
cache across restarts, and health naming the issuer whose CRL is stale.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audit import AuditLog
from server.admin import execute
from server.assembly import _with_health, build_gateway
from server.certcheck import TrustMaterial
from server.config import load_config
from server.crlfetch import CRLFetcher, health_service_name
from server.errors import reason_for, status_code_for
from signing import dsse
from signing.ca import CertificateAuthority
from signing.crl import http_distribution_points
from signing.errors import CertificateRevoked, CRLUnavailable
from signing.revocation import InMemoryRevocationStore
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.timeutil import now_utc
from siogw_api.v1 import admin_pb2, auth_pb2, auth_pb2_grpc
from tests.server.conftest import ServerThread, rpc_error, sign
from tests.server.ops.conftest import make_person
from tests.server.ops.helpers import application


class _Handler(http.server.BaseHTTPRequestHandler):
    server: CrlServer

    def do_GET(self) -> None:
        srv = self.server
        srv.hits += 1
        if srv.mode == "down":
            self.send_error(503, "down for maintenance")
            return
        if srv.mode == "slow":
            time.sleep(srv.delay)
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.mode == "trickle":  # a byte at a time, never finishing within the deadline
            for b in body:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(srv.delay)
            return
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class CrlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.mode = "ok"
        self.delay = 0.0
        self.hits = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def http_crl() -> Iterator[CrlServer]:
    server = CrlServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _serve(srv: CrlServer, ca: CertificateAuthority, path: str = "/ca.crl") -> None:
    srv.files[path] = (ca.directory / "crl.der").read_bytes()


def _ca(tmp_path: Path, srv: CrlServer, name: str = "DP Root", *, path: str = "/ca.crl",
        root_point: bool = True) -> CertificateAuthority:
    """A root-only CA whose certificates (and, with ``root_point``, the root itself) name
    ``srv`` as their CRL distribution point; a first CRL published and served."""
    ca = CertificateAuthority.init(tmp_path / name.replace(" ", "-"), f"CN={name},C=KZ",
                                   crl_url=srv.url(path) if root_point else None)
    if not root_point:
        ca._config["crl_url"] = srv.url(path)
    ca.publish_crl()
    _serve(srv, ca, path)
    return ca


def _material(tmp_path: Path, cas: list[CertificateAuthority], **kw: Any) -> TrustMaterial:
    anchors = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    for ca in cas:
        pem = tmp_path / f"{ca.directory.name}-root.pem"
        pem.write_bytes(ca.root_certificate.public_bytes(serialization.Encoding.PEM))
        anchors.append(pem)
    grace = kw.pop("grace", 0.0)
    fetcher = CRLFetcher(tmp_path / "crl-cache", timeout=kw.pop("timeout", 2.0),
                         attempts=kw.pop("attempts", 2), grace=grace, backoff=0.01, **kw)
    return TrustMaterial(anchors, [], InMemoryRevocationStore(), crl_fetcher=fetcher,
                         crl_grace=_dt.timedelta(seconds=grace))


def _fetcher(material: TrustMaterial) -> CRLFetcher:
    assert material.crl_fetcher is not None
    return material.crl_fetcher


# --- the test CA publishes with a distribution point ----------------------------------------
def test_the_ca_names_its_distribution_point_and_writes_the_der_crl(tmp_path: Path) -> None:
    url = "http://crl.example.kz/root.crl"
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Points Root,C=KZ", crl_url=url)
    anna = make_person(ca, "Anna")
    assert http_distribution_points(anna.cert) == (url,)
    assert http_distribution_points(ca.root_certificate) == (url,)  # its own CRL
    other = make_person(ca, "Other")
    assert http_distribution_points(other.cert) == (url,)
    ca.publish_crl()
    der = (ca.directory / "crl.der").read_bytes()
    assert x509.load_der_x509_crl(der).issuer == ca.root_certificate.subject

    inter = CertificateAuthority.init(tmp_path / "ica", "CN=Points Root 2,C=KZ",
                                      intermediate_subject="CN=Points Issuing,C=KZ",
                                      crl_url="http://crl.example.kz/issuing.crl",
                                      root_crl_url="http://crl.example.kz/root2.crl")
    assert inter.intermediate_certificate is not None
    assert http_distribution_points(inter.intermediate_certificate) == (
        "http://crl.example.kz/root2.crl",)
    assert http_distribution_points(make_person(inter, "Boris").cert) == (
        "http://crl.example.kz/issuing.crl",)


def test_siogw_ca_cli_issues_with_a_point_and_writes_the_served_crl(tmp_path: Path) -> None:
    from siogw.cli import main

    home = tmp_path / "home"
    assert main(["ca", "init", "--home", str(home), "--subject", "CN=Cli Root,C=KZ",
                 "--crl-url", "http://127.0.0.1:9/root.crl"]) == 0
    ca = CertificateAuthority.open(home / "ca")
    assert http_distribution_points(make_person(ca, "Vera").cert) == (
        "http://127.0.0.1:9/root.crl",)
    out = tmp_path / "www" / "root.crl"
    out.parent.mkdir()
    assert main(["ca", "crl", "--home", str(home), "--out", str(out), "--der"]) == 0
    assert x509.load_der_x509_crl(out.read_bytes()).issuer == ca.root_certificate.subject
    assert main(["ca", "crl", "--home", str(home), "--out", str(out), "--der",
                 "--root-out", str(tmp_path / "www" / "x.crl")]) != 0  # no intermediate

    two = tmp_path / "two"
    assert main(["ca", "init", "--dir", str(two), "--subject", "CN=Cli Root 2,C=KZ",
                 "--intermediate", "CN=Cli Issuing,C=KZ",
                 "--crl-url", "http://127.0.0.1:9/issuing.crl",
                 "--root-crl-url", "http://127.0.0.1:9/root.crl"]) == 0
    assert main(["ca", "crl", "--dir", str(two), "--der", "--out", str(out),
                 "--root-out", str(tmp_path / "www" / "root2.crl")]) == 0
    inter = CertificateAuthority.open(two)
    assert inter.intermediate_certificate is not None
    assert x509.load_der_x509_crl(out.read_bytes()).issuer == \
        inter.intermediate_certificate.subject
    assert x509.load_der_x509_crl((tmp_path / "www" / "root2.crl").read_bytes()).issuer == \
        inter.root_certificate.subject


# --- fetching and refreshing --------------------------------------------------------------
def test_fetched_at_start_and_a_newer_crl_takes_effect_on_the_next_call(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    trust = _material(tmp_path, [ca])
    fetcher = _fetcher(trust)
    assert fetcher.refresh_due() == 1  # registered from the anchor's point, fetched now
    anna, boris = make_person(ca, "Anna"), make_person(ca, "Boris")
    trust.validate(anna.cert)
    trust.validate(boris.cert)

    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    trust.validate(boris.cert)  # not refreshed yet: the CRL kept says nothing
    assert fetcher.refresh_due() == 0  # not due: 80 % of a week is far away
    assert fetcher.refresh_all() == 1
    with pytest.raises(CertificateRevoked):
        trust.validate(boris.cert)  # the cached chain, revocation checked now
    trust.validate(anna.cert)
    [status] = trust.crl_status()
    assert status.issuer == ca.root_certificate.subject.rfc4514_string()
    assert status.crl_number == 2 and not status.stale and status.last_error is None
    assert status.urls == (http_crl.url("/ca.crl"),)


def test_refresh_is_due_at_80_percent_of_the_interval_or_the_margin(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    now = now_utc()
    ca.publish_crl(_dt.timedelta(hours=10), now=now - _dt.timedelta(hours=1))
    _serve(http_crl, ca)
    fetcher = _fetcher(_material(tmp_path, [ca]))
    fetcher.refresh_all()
    [state] = fetcher._issuers.values()
    expected = now.replace(microsecond=0) - _dt.timedelta(hours=1) + _dt.timedelta(hours=8)
    assert state.next_attempt == expected
    margin = _fetcher(_material(tmp_path / "m", [ca], refresh_margin=5 * 3600))
    margin.refresh_all()
    [state] = margin._issuers.values()
    assert state.next_attempt == expected - _dt.timedelta(hours=3)  # nextUpdate - 5 h

    # past the refresh point: the next due round fetches again
    ca.publish_crl(_dt.timedelta(hours=10), now=now - _dt.timedelta(hours=9))
    _serve(http_crl, ca)
    late = _fetcher(_material(tmp_path / "late", [ca]))
    hits = http_crl.hits
    assert late.refresh_due() == 1
    assert late.refresh_due() == 0  # the same CRL again: asked once per retry interval
    assert http_crl.hits == hits + 1


def test_the_background_thread_fetches_a_newly_published_crl(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    now = now_utc()
    # the refresh point (80 %) is already behind: the refresher asks every retry_seconds
    ca.publish_crl(_dt.timedelta(hours=1), now=now - _dt.timedelta(minutes=55))
    _serve(http_crl, ca)
    trust = _material(tmp_path, [ca], retry_seconds=1)
    boris = make_person(ca, "Boris")
    trust.start()
    try:
        trust.validate(boris.cert)
        ca.revoke(boris.cert.serial_number, "keyCompromise")
        ca.publish_crl(_dt.timedelta(hours=1), now=now - _dt.timedelta(minutes=54))
        _serve(http_crl, ca)
        deadline = time.monotonic() + 30
        while True:
            try:
                trust.validate(boris.cert)
            except CertificateRevoked:
                break
            assert time.monotonic() < deadline, "the refresher never fetched the new CRL"
            time.sleep(0.1)
    finally:
        trust.close()


def test_a_point_in_a_users_certificate_is_learned_and_fetched_on_first_use(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl, root_point=False)  # only issued certificates name it
    assert http_distribution_points(ca.root_certificate) == ()
    trust = _material(tmp_path, [ca])
    assert trust.crl_status() == []
    boris = make_person(ca, "Boris")
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    with pytest.raises(CertificateRevoked):
        trust.validate(boris.cert)
    assert [s.issuer for s in trust.crl_status()] == ["CN=DP Root,C=KZ"]


def test_an_issuer_whose_crl_was_never_fetched_is_refused(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    http_crl.mode = "down"
    trust = _material(tmp_path, [ca])
    anna = make_person(ca, "Anna")
    with pytest.raises(CRLUnavailable, match="no CRL of CN=DP Root,C=KZ could be fetched"):
        trust.validate(anna.cert)
    err = CRLUnavailable("x")
    assert reason_for(err) == "CRL_UNAVAILABLE"
    assert status_code_for(err) is grpc.StatusCode.UNAVAILABLE
    [status] = trust.crl_status()
    assert status.stale and status.last_error is not None and "503" in status.last_error
    http_crl.mode = "ok"
    # asked again only after retry_seconds (not on every call); a refresh brings it
    _fetcher(trust).refresh_all()
    trust.validate(anna.cert)


# --- outages ----------------------------------------------------------------------------
def test_an_outage_within_grace_keeps_serving_on_the_cached_crl(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    now = now_utc()
    ca.publish_crl(_dt.timedelta(hours=2), now=now - _dt.timedelta(hours=2, minutes=10))
    _serve(http_crl, ca)  # nextUpdate 10 minutes ago
    trust = _material(tmp_path, [ca], grace=3600)
    _fetcher(trust).refresh_all()
    http_crl.mode = "down"
    assert _fetcher(trust).refresh_all() == 0
    anna = make_person(ca, "Anna")
    trust.validate(anna.cert)  # past nextUpdate, within the hour of grace: still served
    trust.check_crls_current()
    [status] = trust.crl_status()
    assert not status.stale and "503" in (status.last_error or "")
    assert trust.crl_health() == {"siogw.crl.CN=DP Root,C=KZ": True}


def test_past_grace_that_issuer_fails_closed_and_health_names_it(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    stale_ca = _ca(tmp_path, http_crl)
    fine_ca = _ca(tmp_path, http_crl, "Fine Root", path="/fine.crl")
    now = now_utc()
    stale_ca.publish_crl(_dt.timedelta(hours=1), now=now - _dt.timedelta(hours=3))
    _serve(http_crl, stale_ca)  # nextUpdate 2 hours ago
    trust = _material(tmp_path, [stale_ca, fine_ca], grace=3600)
    _fetcher(trust).refresh_all()
    http_crl.files.pop("/ca.crl")  # the CA's server loses the file: 404
    _fetcher(trust).refresh_all()
    anna, vera = make_person(stale_ca, "Anna"), make_person(fine_ca, "Vera")
    with pytest.raises(CRLUnavailable) as err:
        trust.validate(anna.cert)
    assert "the CRL of CN=DP Root,C=KZ is stale" in err.value.message
    assert "refused until" in err.value.message
    trust.validate(vera.cert)  # the other issuer is still served
    assert trust.crl_health() == {
        health_service_name(stale_ca.root_certificate.subject): False,
        health_service_name(fine_ca.root_certificate.subject): True,
    }
    # the CA publishes again: the next refresh lets the issuer's users in again
    stale_ca.publish_crl()
    _serve(http_crl, stale_ca)
    _fetcher(trust).refresh_all()
    trust.validate(anna.cert)
    assert all(trust.crl_health().values())


def test_a_slow_server_is_cut_by_the_deadline_and_the_cached_crl_kept(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    trust = _material(tmp_path, [ca], timeout=0.5, attempts=2)
    fetcher = _fetcher(trust)
    fetcher.refresh_all()
    ca.publish_crl()
    _serve(http_crl, ca)
    http_crl.mode, http_crl.delay = "slow", 3.0
    assert fetcher.refresh_all() == 0
    [status] = trust.crl_status()
    assert status.crl_number == 1 and "no answer within 0.5 s" in (status.last_error or "")
    http_crl.mode, http_crl.delay = "trickle", 0.05  # answers, but never in time
    assert fetcher.refresh_all() == 0
    [status] = trust.crl_status()
    assert status.crl_number == 1 and "not received within 0.5 s" in (status.last_error or "")
    trust.validate(make_person(ca, "Anna").cert)


# --- verification of what is fetched -------------------------------------------------------
def test_a_forged_crl_is_refused_and_the_cached_one_kept(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    boris = make_person(ca, "Boris")
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    trust = _material(tmp_path, [ca])
    fetcher = _fetcher(trust)
    fetcher.refresh_all()
    with pytest.raises(CertificateRevoked):
        trust.validate(boris.cert)
    # a forger's CA under the same name publishes an empty, "newer" CRL
    forger = CertificateAuthority.init(tmp_path / "forger", "CN=DP Root,C=KZ")
    for _ in range(5):
        forger.publish_crl()
    _serve(http_crl, forger)
    assert fetcher.refresh_all() == 0
    [status] = trust.crl_status()
    assert "signature does not verify" in (status.last_error or "")
    assert status.crl_number == 2
    with pytest.raises(CertificateRevoked):
        trust.validate(boris.cert)
    # another issuer's CRL is refused by name
    other = _ca(tmp_path, http_crl, "Other Root", path="/other.crl")
    http_crl.files["/ca.crl"] = http_crl.files["/other.crl"]
    assert fetcher.refresh_all() == 0
    assert "not CN=DP Root,C=KZ" in (trust.crl_status()[0].last_error or "")
    assert other is not None


def test_an_older_crl_replayed_is_refused(tmp_path: Path, http_crl: CrlServer) -> None:
    ca = _ca(tmp_path, http_crl)
    old = http_crl.files["/ca.crl"]
    boris = make_person(ca, "Boris")
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    trust = _material(tmp_path, [ca])
    fetcher = _fetcher(trust)
    fetcher.refresh_all()
    http_crl.files["/ca.crl"] = old  # the genuine first CRL, without Boris
    assert fetcher.refresh_all() == 0
    [status] = trust.crl_status()
    assert "not above the 2 of the one kept" in (status.last_error or "") or \
        "older than the one kept" in (status.last_error or "")
    with pytest.raises(CertificateRevoked):
        trust.validate(boris.cert)


def test_the_cache_survives_a_restart_during_an_outage(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    boris = make_person(ca, "Boris")
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    _fetcher(_material(tmp_path, [ca])).refresh_all()
    cached = list((tmp_path / "crl-cache").glob("*.crl"))
    assert len(cached) == 1 and (cached[0].stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "crl-cache").stat().st_mode & 0o777) == 0o700
    http_crl.mode = "down"
    restarted = _material(tmp_path, [ca])
    with pytest.raises(CertificateRevoked):
        restarted.validate(boris.cert)
    assert restarted.crl_status()[0].crl_number == 2
    # a cache file that was tampered with is not believed
    raw = bytearray(cached[0].read_bytes())
    raw[-5] ^= 0x01
    cached[0].write_bytes(bytes(raw))
    again = _material(tmp_path, [ca])
    with pytest.raises(CRLUnavailable):
        again.validate(boris.cert)


# --- the gateway ------------------------------------------------------------------------
def _gateway(tmp_path: Path, ca: CertificateAuthority) -> Iterator[Any]:
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={
        "trust": {"anchors": ["root.pem"]},
        "crl": {"timeout": 2, "attempts": 1, "grace": 600}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/crl-fetch")
    gw = build_gateway(config, signer=signer, audit_log=log, dispatcher=object())
    yield ca, gw, config
    gw.trust.close()
    gw.ops_wiring.close()
    log.close()
    gw.store.close()


@pytest.fixture
def gateway(tmp_path: Path, http_crl: CrlServer) -> Iterator[Any]:
    yield from _gateway(tmp_path, _ca(tmp_path, http_crl))


@pytest.fixture
def stale_gateway(tmp_path: Path, http_crl: CrlServer) -> Iterator[Any]:
    """The CA's only CRL had its nextUpdate an hour ago, past the 10 minutes of grace."""
    ca = _ca(tmp_path, http_crl)
    ca.publish_crl(_dt.timedelta(hours=1), now=now_utc() - _dt.timedelta(hours=2))
    _serve(http_crl, ca)
    yield from _gateway(tmp_path, ca)


def test_gateway_a_revoked_analyst_is_refused_once_the_new_crl_is_fetched(
    gateway: Any, http_crl: CrlServer
) -> None:
    ca, gw, config = gateway
    assert config.effective_crl_cache_dir == config.home / "crl-cache"
    anna, boris = make_person(ca, "Anna"), make_person(ca, "Boris")
    gw.trust.crl_fetcher.refresh_due()
    assert gw.ops.applications.file(application(anna)).status == "pending"
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    gw.trust.crl_fetcher.refresh_all()
    with pytest.raises(CertificateRevoked):
        gw.ops.applications.file(application(boris))
    with pytest.raises(CertificateRevoked):
        gw.trust.validate(boris.cert)


def test_gateway_health_reports_the_stale_issuer(stale_gateway: Any) -> None:
    ca, gw, config = stale_gateway
    gw.trust.crl_fetcher.refresh_all()
    name = "siogw.crl.CN=DP Root,C=KZ"

    async def check() -> tuple[int, int]:
        server = aio.server()
        servicer, updater = _with_health(server, config, gw)
        await updater.refresh()
        issuer = await servicer.Check(health_pb2.HealthCheckRequest(service=name), None)
        whole = await servicer.Check(health_pb2.HealthCheckRequest(service=""), None)
        return issuer.status, whole.status

    issuer, whole = asyncio.run(check())
    assert issuer == health_pb2.HealthCheckResponse.NOT_SERVING
    # the gateway itself serves on: other issuers' users are still checked
    assert whole == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(CRLUnavailable):
        gw.trust.validate(make_person(ca, "Anna").cert)


def test_crl_fetching_can_be_switched_off(tmp_path: Path, http_crl: CrlServer) -> None:
    ca = _ca(tmp_path, http_crl)
    http_crl.mode = "down"
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={
        "trust": {"anchors": ["root.pem"]}, "crl": {"enabled": False}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/crl-off")
    gw = build_gateway(config, signer=signer, audit_log=log, dispatcher=object())
    try:
        assert gw.trust.crl_fetcher is None and gw.trust.crl_status() == []
        gw.trust.validate(make_person(ca, "Anna").cert)  # files only: no CRL, no check
        assert http_crl.hits == 0
    finally:
        gw.ops_wiring.close()
        log.close()
        gw.store.close()


def test_concurrent_first_checks_fetch_once_and_no_dp_leaves_no_cache(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    plain = CertificateAuthority.init(tmp_path / "plain", "CN=Plain Root,C=KZ")
    plain.publish_crl()
    quiet = _material(tmp_path / "quiet", [plain])
    quiet.validate(make_person(plain, "Anna").cert)
    assert not (tmp_path / "quiet" / "crl-cache").exists() and quiet.crl_status() == []

    ca = _ca(tmp_path, http_crl, root_point=False)
    trust = _material(tmp_path, [ca])
    people = [make_person(ca, f"P{i}") for i in range(6)]
    http_crl.mode, http_crl.delay = "slow", 0.3
    errors: list[BaseException] = []

    def check(person: Any) -> None:
        try:
            trust.validate(person.cert)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=check, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert http_crl.hits == 1  # the first fetched; the others waited and used it


def test_grpc_a_login_of_the_stale_issuer_is_unavailable_and_health_names_it(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    """Through a running gateway: ProveLogin with a certificate of the issuer whose CRL is
    stale answers UNAVAILABLE / CRL_UNAVAILABLE with our own message, and the health
    service of that issuer is NOT_SERVING while the gateway's own status is SERVING."""
    ca = _ca(tmp_path, http_crl)
    ca.publish_crl(_dt.timedelta(hours=1), now=now_utc() - _dt.timedelta(hours=2))
    _serve(http_crl, ca)
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={
        "server": {"port": 0, "host": "127.0.0.1"}, "tls": {"enabled": False},
        "trust": {"anchors": ["root.pem"]}, "limits": {"health_poll_seconds": 0.2},
        "crl": {"timeout": 2, "attempts": 1, "grace": 600}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/crl-grpc")
    gw = build_gateway(config, signer=signer, audit_log=log)
    anna = make_person(ca, "Anna")
    execute(None, gw.store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
        user_id="anna", full_name="Anna", role="agency_user", phone="+77010000009",
        certificate_der=anna.cert_der)))
    srv = ServerThread(config, gw)
    port = srv.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        begun = auth.BeginLogin(auth_pb2.BeginLoginRequest(
            user_id="anna", certificate_der=anna.cert_der))
        env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, anna.signer)
        code, reason, message = rpc_error(lambda: auth.ProveLogin(auth_pb2.ProveLoginRequest(
            login_id=begun.login_id, signed_challenge=env,
            factor=auth_pb2.SECOND_FACTOR_SMS)))
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "CRL_UNAVAILABLE")
        assert message.startswith("the CRL of CN=DP Root,C=KZ is stale")
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        name = "siogw.crl.CN=DP Root,C=KZ"
        while True:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
                if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
            except grpc.RpcError:  # not yet set by the first poll
                pass
            assert time.monotonic() < deadline, "health never named the stale issuer"
            time.sleep(0.1)
        whole = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert whole.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()
        srv.stop()


# --- record first; the Journal of emergencies -------------------------------------------------
def _records(home: Path, event: str) -> list[Any]:
    from audit.archive import iter_archive_records

    return [rec for _, rec in iter_archive_records(home / "audit") if rec.event == event]


def test_gateway_records_each_crl_update_before_it_applies_and_each_refusal_once(
    gateway: Any, http_crl: CrlServer, tmp_path: Path
) -> None:
    ca, gw, _ = gateway
    fetcher = gw.trust.crl_fetcher
    boris = make_person(ca, "Boris")
    fetcher.refresh_all()
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    ca.publish_crl()
    _serve(http_crl, ca)
    fetcher.refresh_all()
    updated = _records(tmp_path, "crl.updated")
    assert [r.details["crl_number"] for r in updated][-1] == 2
    last = updated[-1]
    assert last.actor == "system:crl" and last.outcome == "success"
    assert last.details["issuer"] == "CN=DP Root,C=KZ" and last.details["revoked"] == 1
    assert last.details["url"] == http_crl.url("/ca.crl")

    forger = CertificateAuthority.init(tmp_path / "forger", "CN=DP Root,C=KZ")
    for _ in range(3):
        forger.publish_crl()
    _serve(http_crl, forger)
    fetcher.refresh_all()
    fetcher.refresh_all()  # the same forgery again: not recorded twice
    [refused] = _records(tmp_path, "crl.refused")
    assert refused.outcome == "refused" and "signature does not verify" in refused.details["reason"]


def test_a_crl_that_cannot_be_recorded_is_not_taken(tmp_path: Path, http_crl: CrlServer) -> None:
    ca = _ca(tmp_path, http_crl)
    trust = _material(tmp_path, [ca])
    fetcher = _fetcher(trust)

    def broken(event: str, details: dict[str, object]) -> None:
        raise RuntimeError("the audit log failed closed")

    fetcher.on_event = broken
    assert fetcher.refresh_all() == 0
    [status] = trust.crl_status()
    assert status.crl_number is None and "could not be recorded" in (status.last_error or "")
    with pytest.raises(CRLUnavailable):
        trust.validate(make_person(ca, "Anna").cert)
    seen: list[str] = []
    fetcher.on_event = lambda event, details: seen.append(event)
    assert fetcher.refresh_all() == 1 and seen == ["crl.updated"]


def test_gateway_a_stale_issuer_is_journaled_as_an_emergency_and_resolved(
    stale_gateway: Any, http_crl: CrlServer
) -> None:
    from tests.server.ops.conftest import OPERATOR

    ca, gw, _ = stale_gateway
    fetcher = gw.trust.crl_fetcher
    assert fetcher.on_stale == gw.emergencies.crl_changed
    fetcher.refresh_all()
    fetcher.report_staleness()

    def open_entries() -> list[Any]:
        return list(gw.ops.journal.emergencies(OPERATOR, open_only=True))

    deadline = time.monotonic() + 30
    while not open_entries():
        assert time.monotonic() < deadline, "the stale CRL was never journaled"
        time.sleep(0.1)
    [entry] = open_entries()
    assert entry.recorded_by == "system:crl:CN=DP Root,C=KZ"
    assert "is stale" in entry.causes and "CRL_UNAVAILABLE" in entry.measures
    ca.publish_crl()
    _serve(http_crl, ca)
    fetcher.refresh_all()
    fetcher.report_staleness()
    deadline = time.monotonic() + 30
    while open_entries():
        assert time.monotonic() < deadline, "the emergency was never resolved"
        time.sleep(0.1)


def test_crl_status_lists_fetched_and_file_crls_for_the_metrics(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    ca = _ca(tmp_path, http_crl)
    files_ca = CertificateAuthority.init(tmp_path / "files", "CN=File Root,C=KZ")
    files_ca.publish_crl(_dt.timedelta(hours=1), now=now_utc() - _dt.timedelta(hours=2))
    pem = tmp_path / "root.pem"
    pem.write_bytes(ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    fetcher = CRLFetcher(tmp_path / "crl-cache", timeout=2, attempts=1)
    trust = TrustMaterial([pem], [files_ca.directory / "crl.pem"], InMemoryRevocationStore(),
                          crl_fetcher=fetcher)
    fetcher.refresh_all()
    fetched, from_file = trust.crl_status()
    assert (fetched.issuer, fetched.stale, fetched.crl_number) == ("CN=DP Root,C=KZ", False, 1)
    assert fetched.next_update is not None and fetched.this_update is not None
    assert fetched.health_service == "siogw.crl.CN=DP Root,C=KZ"
    assert (from_file.issuer, from_file.stale, from_file.urls) == ("CN=File Root,C=KZ", True, ())


def test_a_fetched_crl_that_does_not_cover_the_certificate_fails_closed(
    tmp_path: Path, http_crl: CrlServer
) -> None:
    """A CRL partitioned by distribution point (issuingDistributionPoint naming another
    point) says nothing about this certificate: refused, not silently passed."""
    from cryptography.hazmat.primitives import hashes

    ca = _ca(tmp_path, http_crl)
    key = serialization.load_pem_private_key(
        (ca.directory / "root-key.pem").read_bytes(), password=None)
    now = now_utc()
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(http_crl.url("/other-part.crl"))],
        relative_name=None, only_contains_user_certs=False, only_contains_ca_certs=False,
        only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    partial = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.root_certificate.subject)
               .last_update(now - _dt.timedelta(minutes=1))
               .next_update(now + _dt.timedelta(days=1))
               .add_extension(x509.CRLNumber(9), critical=False)
               .add_extension(idp, critical=True)
               .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    http_crl.files["/ca.crl"] = partial.public_bytes(serialization.Encoding.DER)
    trust = _material(tmp_path, [ca])
    assert _fetcher(trust).refresh_all() == 1
    with pytest.raises(CRLUnavailable, match="covers"):
        trust.validate(make_person(ca, "Anna").cert)


def test_the_crl_section_is_strict_and_bounded(tmp_path: Path) -> None:
    from siogw_api.errors import ConfigError

    config = load_config(tmp_path, env={})
    assert config.crl.enabled and config.crl.grace == 0 and config.crl.timeout == 5.0
    assert config.effective_crl_cache_dir == tmp_path / "crl-cache"
    (tmp_path / "siogw.toml").write_text('[crl]\ngrase = 60\n')
    with pytest.raises(ConfigError, match=r"unknown key crl.grase \(did you mean crl.grace\?\)"):
        load_config(tmp_path, env={})
    (tmp_path / "siogw.toml").write_text(
        '[crl]\ngrace = 3600\nrefresh_margin = 7200\ncache_dir = "/var/cache/siogw-crl"\n')
    config = load_config(tmp_path, env={})
    assert config.crl.grace == 3600 and config.crl.refresh_margin == 7200
    assert config.effective_crl_cache_dir == Path("/var/cache/siogw-crl")
    for key, value in (("timeout", 0), ("attempts", 11), ("grace", -1), ("retry_seconds", 0),
                       ("max_bytes", 10), ("enabled", "maybe")):
        with pytest.raises(ConfigError, match=f"crl.{key}"):
            load_config(tmp_path / "x", env={}, overrides={"crl": {key: value}})
