"""The client's TLS client certificate: a server that requires one accepts only with it.

Runs over both clients (``client_kind``: sync, and asyncio behind the blocking adapter).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from clients import ClientError
from siogw import demo
from siogw_api.v1 import query_pb2

from .conftest import CLIENT_KINDS, ClientWorld


@pytest.fixture(scope="module")
def mtls_port(client_world: ClientWorld) -> Iterator[int]:
    """A bare grpc.aio server answering GetServiceStatus, requiring a client certificate."""
    from grpc import aio

    w = client_world.world

    async def status(request: bytes, context: Any) -> bytes:
        return query_pb2.ServiceStatus(
            serving=True, now="2026-01-01T00:00:00+05:00"
        ).SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "siogw.v1.QueryService",
        {"GetServiceStatus": grpc.unary_unary_rpc_method_handler(status)},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Any, int]:
        server = aio.server()
        server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials(
            [(w.tls_key.read_bytes(), w.tls_cert.read_bytes())],
            root_certificates=w.ca_file.read_bytes(),
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", creds)
        await server.start()
        return server, port

    server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def client_cert(client_world: ClientWorld, tmp_path: Path) -> tuple[Path, Path]:
    from signing.ca import CertificateAuthority
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key

    key = generate_software_key("ecdsa-p256-sha256")
    ca = CertificateAuthority.open(client_world.world.ca_dir)
    cert = ca.issue(build_csr(SoftwareSigner(key), "CN=analyst workstation,O=AFM,C=KZ"), "user", 1)
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_client_certificate_is_presented(
    client_world: ClientWorld, mtls_port: int, tmp_path: Path, client_kind: str
) -> None:
    w = client_world.world
    make = CLIENT_KINDS[client_kind]
    common: dict[str, Any] = {
        "ca_file": w.ca_file,
        "gateway_certificate": w.gateway_cert,
        "server_name": demo.TLS_NAME,
        "timeout": 5.0,
    }
    with make(f"127.0.0.1:{mtls_port}", **common) as anonymous:
        with pytest.raises(ClientError) as ei:
            anonymous.service_status()
        assert ei.value.code == grpc.StatusCode.UNAVAILABLE
    cert_file, key_file = client_cert(client_world, tmp_path)
    with make(
        f"127.0.0.1:{mtls_port}", client_cert_file=cert_file, client_key_file=key_file, **common
    ) as client:
        assert client.service_status().serving
