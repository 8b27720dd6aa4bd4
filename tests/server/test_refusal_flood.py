"""Issue 12 point 5 over the real port: a flood of unauthenticated calls grows the
write-once log by a bounded number of records (the first ``anonymous_refusal_burst`` of
the peer's window one by one, the rest counted in one summary written at the latest at a
clean stop). The gateway runs with the default limits, not the harness's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from tests.server.conftest import ServerThread, make_token_signer, rpc_error

FLOOD = 300


@pytest.fixture
def flood_gateway(softhsm_store: Any, tmp_path: Path) -> Iterator[tuple[Path, int, bytes, Any]]:
    from audit import AuditLog
    from server.assembly import build_gateway
    from server.config import Limits, load_config
    from signing.ca import CertificateAuthority
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key

    home = tmp_path / "gw"
    home.mkdir()
    ca = CertificateAuthority.init(home / "ca", "CN=Flood Test Root,C=KZ")
    ca.publish_crl()
    tls_key = generate_software_key("ecdsa-p256-sha256")
    tls_cert = ca.issue(
        build_csr(SoftwareSigner(tls_key), "CN=localhost", dns_names=["localhost"]), "server")
    (home / "tls").mkdir()
    (home / "tls" / "server.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))
    (home / "tls" / "server.key").write_bytes(tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    root_pem = ca.root_certificate.public_bytes(serialization.Encoding.PEM)
    (home / "root.pem").write_bytes(root_pem)
    config = load_config(home, env={}, overrides={
        "server": {"port": 0, "host": "127.0.0.1"},
        "tls": {"cert_file": "tls/server.pem", "key_file": "tls/server.key"},
        "trust": {"anchors": ["root.pem"], "crls": [str(home / "ca" / "crl.pem")]},
    })
    assert config.limits.anonymous_refusal_burst == Limits().anonymous_refusal_burst
    secrets_dir = home / "secrets"
    secrets_dir.mkdir()
    signer = make_token_signer(softhsm_store, secrets_dir, "flood-gw", ca)
    audit_log = AuditLog.open(home / "audit", signer, "sio-gateway/test")
    gw = build_gateway(config, signer=signer, audit_log=audit_log)
    srv = ServerThread(config, gw)
    port = srv.start()
    try:
        yield home, port, root_pem, srv
    finally:
        srv.stop()


def _records(home: Path) -> list[Any]:
    from audit.archive import iter_archive_records

    return [rec for _, rec in iter_archive_records(home / "audit")]


def test_a_flood_of_unauthenticated_calls_writes_a_bounded_number_of_records(
    flood_gateway: tuple[Path, int, bytes, Any],
) -> None:
    from server.config import Limits
    from siogw_api.v1 import query_pb2, query_pb2_grpc

    home, port, root_pem, srv = flood_gateway
    burst = Limits().anonymous_refusal_burst
    channel = grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(root_pem))
    stub = query_pb2_grpc.QueryServiceStub(channel)
    before = len(_records(home))
    try:
        for _ in range(FLOOD):
            code, reason, _ = rpc_error(lambda: stub.Query(query_pb2.QueryRequest()))
            assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    finally:
        channel.close()
    refusals = [r for r in _records(home)[before:] if r.event == "refusal"]
    assert len(refusals) == burst  # not FLOOD: the rest are only counted
    assert all(r.actor == "anonymous" for r in refusals)

    srv.stop()  # a clean stop writes the summary of the window still open
    summaries = [r for r in _records(home) if r.event == "refusal.summary"]
    assert len(summaries) == 1
    details = summaries[0].details
    assert details["suppressed"] == FLOOD - burst
    assert details["by_reason"] == {"UNAUTHENTICATED": FLOOD - burst}
    assert details["recorded"] == burst
    assert len(_records(home)) - before <= burst + 1
