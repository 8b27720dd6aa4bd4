"""Issue 13, defect 5: the operations domain checks signatures against the same,
live trust store as the gateway's logins (``server.certcheck.TrustMaterial.live``), so a
CRL published while the gateway runs applies to applications at once, and a stale CRL
replaced on disk stops failing them without a restart."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from audit import AuditLog
from server.assembly import build_gateway
from server.certcheck import LiveTrustStore, TrustMaterial
from server.config import load_config
from signing.ca import CertificateAuthority
from signing.errors import CertificateRevoked, StaleCRL
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.timeutil import now_utc
from tests.server.ops.conftest import make_person
from tests.server.ops.helpers import application


def _publish(ca: CertificateAuthority, bump: int, **kw: Any) -> None:
    ca.publish_crl(**kw)
    crl = ca.directory / "crl.pem"
    stamp = crl.stat().st_mtime + bump  # a new file, even within one mtime tick
    os.utime(crl, (stamp, stamp))


@pytest.fixture
def world(tmp_path: Path) -> Any:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Live Root,C=KZ")
    ca.publish_crl()
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={
        "trust": {"anchors": ["root.pem"], "crls": [str(tmp_path / "ca" / "crl.pem")]}})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/live-trust")
    gw = build_gateway(config, signer=signer, audit_log=log, dispatcher=object())
    yield ca, gw
    gw.ops_wiring.close()
    log.close()
    gw.store.close()


def test_ops_share_the_gateways_live_trust_store(world: Any) -> None:
    _, gw = world
    trust = gw.ops.applications.trust
    assert isinstance(trust, LiveTrustStore)
    assert isinstance(gw.trust, TrustMaterial) and trust is gw.trust.live()
    assert gw.ops.certificates.trust is trust and gw.ops.prosecutor.trust is trust


def test_a_crl_published_while_running_refuses_an_application(world: Any) -> None:
    ca, gw = world
    anna, boris = make_person(ca, "Anna"), make_person(ca, "Boris")
    assert gw.ops.applications.file(application(anna)).status == "pending"
    ca.revoke(boris.cert.serial_number, "keyCompromise")
    _publish(ca, 2)
    with pytest.raises(CertificateRevoked):
        gw.ops.applications.file(application(boris))
    # the gateway's login check sees the same revocation
    with pytest.raises(CertificateRevoked):
        gw.trust.validate(boris.cert)


def test_a_stale_crl_replaced_on_disk_stops_failing_without_restart(world: Any) -> None:
    ca, gw = world
    anna = make_person(ca, "Anna")
    past = now_utc() - _dt.timedelta(hours=3)
    _publish(ca, 2, next_update=_dt.timedelta(hours=1), now=past)
    with pytest.raises(StaleCRL):
        gw.ops.applications.file(application(anna))
    _publish(ca, 4)
    assert gw.ops.applications.file(application(anna)).status == "pending"
