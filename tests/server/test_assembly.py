"""``server.assembly``: the one composition root.

The gateway it builds declares every field it has (nothing is attached later), the
operations domain's rules observe the audit sink by construction, a process without an
operations domain says so in a declared field, and a start-up failure of the operations
domain stops :func:`server.app.run_server` before anything is served.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from audit import AuditLog
from server.admin import AdminServicer
from server.app import run_server
from server.assembly import ObservedSink, build_gateway, close_gateway
from server.audit_service import AuditServicer
from server.auditsink import JsonlAuditSink
from server.config import load_config
from server.context import Gateway
from server.errors import NotImplementedYet
from signing.ca import CertificateAuthority
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.errors import ConfigError


def _config(home: Path, *, anchors: bool = True, **server: Any) -> Any:
    overrides: dict[str, Any] = {"server": {"host": "127.0.0.1", "port": 0, **server},
                                 "tls": {"enabled": False}}
    if anchors:
        ca = CertificateAuthority.init(home / "ca", "CN=Assembly Root")
        (home / "root.pem").write_bytes(
            ca.root_certificate.public_bytes(serialization.Encoding.PEM))
        overrides["trust"] = {"anchors": ["root.pem"]}
    return load_config(home, env={}, overrides=overrides)


def _signer() -> SoftwareSigner:
    return SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))


def test_every_field_of_the_gateway_is_declared_and_set_at_assembly(tmp_path: Path) -> None:
    signer = _signer()
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/assembly")
    gw = build_gateway(_config(tmp_path), signer=signer, audit_log=log)
    try:
        declared = {f.name for f in dataclasses.fields(Gateway)}
        assert set(vars(gw)) == declared
        assert not [f.name for f in dataclasses.fields(Gateway) if "Any" in str(f.type)]
        # Building the servicers changes nothing on the gateway.
        AdminServicer(gw)
        AuditServicer(gw)
        assert set(vars(gw)) == declared
        assert gw.ops_wiring is not None and gw.ops is gw.ops_wiring.ops
        assert gw.audit_log is log and gw.dispatcher is not None
        # The rules observe the sink by construction; its record method is its class's.
        assert isinstance(gw.audit, ObservedSink)
        assert gw.audit.observers == (gw.ops_wiring.observe,)
        assert "record" not in vars(gw.audit)
    finally:
        asyncio.run(close_gateway(gw))


def test_without_an_audit_log_there_is_no_operations_domain_and_it_says_so(
    tmp_path: Path,
) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    gw = build_gateway(_config(tmp_path), signer=_signer(), audit=sink)
    try:
        assert set(vars(gw)) == {f.name for f in dataclasses.fields(Gateway)}
        assert gw.ops_wiring is None and gw.ops is None and gw.audit is sink
        with pytest.raises(NotImplementedYet):
            gw.require_ops()
    finally:
        asyncio.run(close_gateway(gw))


def test_a_log_and_a_sink_together_are_refused(tmp_path: Path) -> None:
    signer = _signer()
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/assembly")
    try:
        with pytest.raises(ConfigError):
            build_gateway(_config(tmp_path), signer=signer, audit_log=log,
                          audit=JsonlAuditSink(tmp_path / "a.jsonl"))
    finally:
        log.close()


def test_a_gateway_without_trust_anchors_stops_the_assembly(tmp_path: Path) -> None:
    """No anchors: refused by ``check_can_serve`` before the store is opened (issue 13)."""
    signer = _signer()
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/assembly")
    try:
        with pytest.raises(ConfigError) as ei:
            build_gateway(_config(tmp_path, anchors=False), signer=signer, audit_log=log)
        text = ei.value.diagnostics()
        assert "trust.anchors" in text
        assert not (tmp_path / "siogw.db").exists()
    finally:
        log.close()


def test_run_server_stops_at_start_up_when_the_configuration_cannot_serve(
    tmp_path: Path,
) -> None:
    """No port is served and no "retry on first use": ``run_server`` raises the one
    clear error the CLI prints."""
    key = tmp_path / "gateway.key"
    key.write_bytes(generate_software_key("ecdsa-p256-sha256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    config = load_config(tmp_path, env={}, overrides={
        "server": {"host": "127.0.0.1", "port": free}, "tls": {"enabled": False},
        "signer": {"uri": f"file:{key}"}})
    served: list[int] = []

    async def start() -> None:
        async with run_server(config) as port:
            served.append(port)

    with pytest.raises(ConfigError) as ei:
        asyncio.run(start())
    assert served == []
    assert "no trust anchors configured (trust.anchors)" in ei.value.diagnostics()
    with socket.socket() as s:  # nothing was left listening
        s.bind(("127.0.0.1", free))
