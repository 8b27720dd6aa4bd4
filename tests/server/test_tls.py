"""Transport security: TLS always, and optional client-certificate authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.assembly import build_gateway
from server.auditsink import JsonlAuditSink
from server.config import load_config
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from tests.server.conftest import ServerThread


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("mtls")
    ca = CertificateAuthority.init(home / "ca", "CN=TLS Root")
    server_key = generate_software_key("ecdsa-p256-sha256")
    server_cert = ca.issue(build_csr(SoftwareSigner(server_key), "CN=localhost",
                                     dns_names=["localhost"]), "server")
    client_key = generate_software_key("ecdsa-p256-sha256")
    # the user profile has no EKU, so any purpose (TLS client auth included) is allowed
    client_cert = ca.issue(build_csr(SoftwareSigner(client_key), "CN=workstation-1"), "user")
    root = ca.root_certificate.public_bytes(serialization.Encoding.PEM)
    (home / "server.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (home / "server.key").write_bytes(_pem_key(server_key))
    (home / "root.pem").write_bytes(root)
    config = load_config(home, env={}, overrides={
        "server": {"port": 0},
        "tls": {"cert_file": "server.pem", "key_file": "server.key",
                "client_ca_file": "root.pem", "require_client_cert": True},
        "trust": {"anchors": ["root.pem"]},
    })
    gw = build_gateway(config, signer=SoftwareSigner(generate_software_key("ecdsa-p256-sha256")),
                       audit=JsonlAuditSink(home / "audit.jsonl"))
    srv = ServerThread(config, gw)
    port = srv.start()
    try:
        yield {"port": port, "root": root,
               "client": (_pem_key(client_key),
                          client_cert.public_bytes(serialization.Encoding.PEM))}
    finally:
        srv.stop()


def _check(port: int, creds: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        return int(health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10).status)


def test_client_certificate_required_when_configured(mtls: dict[str, Any]) -> None:
    key, cert = mtls["client"]
    with_cert = grpc.ssl_channel_credentials(mtls["root"], key, cert)
    assert _check(mtls["port"], with_cert) == health_pb2.HealthCheckResponse.SERVING
    without = grpc.ssl_channel_credentials(mtls["root"])
    with pytest.raises(grpc.RpcError) as ei:
        _check(mtls["port"], without)
    assert ei.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_plaintext_is_refused_by_a_tls_server(mtls: dict[str, Any]) -> None:
    with grpc.insecure_channel(f"localhost:{mtls['port']}") as channel, \
            pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_tls_without_certificate_files_is_a_config_error(tmp_path: Path) -> None:
    import asyncio

    from server.app import run_server
    from siogw_api.errors import ConfigError

    ca = CertificateAuthority.init(tmp_path / "ca", "CN=TLS Root")
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={
        "server": {"port": 0}, "trust": {"anchors": ["root.pem"]}})
    gw = build_gateway(config, signer=SoftwareSigner(generate_software_key("ecdsa-p256-sha256")),
                       audit=JsonlAuditSink(tmp_path / "a.jsonl"))

    async def start() -> None:
        async with run_server(config, gateway=gw):
            pass

    with pytest.raises(ConfigError, match=r"tls\.cert_file / tls\.key_file are not set"):
        asyncio.run(start())
