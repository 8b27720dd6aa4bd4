"""The replay guard made whole from the audit log (``OpsWiring.restore_replay_guard``).

A lost commit of the control-plane database (SQLite ``synchronous=NORMAL`` and a power
loss, or a restore from a backup) must not let a used request id through again while its
envelope is still fresh: the audit log, fsync'd before every answer, names the ids.
Real store, real ``AuditLog`` and audit index; no server.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from audit import AuditLog, AuditRecord
from server.assembly import build_gateway
from server.config import load_config
from server.store import Store
from server.store.errors import ReplayDetected
from server.store.schema import seen_requests
from signing.ca import CertificateAuthority
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.timeutil import now_utc
from tests.server.conftest import pg_test_url

QUERY = "/siogw.v1.QueryService/Query"
ADMIN = "/siogw.v1.AdminService/Run"


class Parts:
    """A gateway's config, key and audit log; :meth:`build` assembles the gateway (the
    replay guard is restored then, as at the start of a gateway)."""

    def __init__(self, config: Any, signer: Any, log: AuditLog) -> None:
        self.config, self.signer, self.log = config, signer, log
        self.built: list[Any] = []

    def build(self, store: Store | None = None) -> Any:
        gw = build_gateway(self.config, signer=self.signer, audit_log=self.log, store=store,
                           dispatcher=object())
        self.built.append(gw)
        return gw


@pytest.fixture(params=["sqlite", "pg"])
def parts(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    server: dict[str, Any] = {}
    drop = None
    if request.param == "pg":
        server["database_url"], drop = pg_test_url()
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Replay Root")
    (tmp_path / "root.pem").write_bytes(
        ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    config = load_config(tmp_path, env={}, overrides={"trust": {"anchors": ["root.pem"]},
                                                      "server": server})
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    log = AuditLog.open(tmp_path / "audit", signer, "sio-gateway/replay")
    made = Parts(config, signer, log)
    yield made
    for gw in made.built:
        assert gw.ops_wiring is not None
        gw.ops_wiring.close()
        gw.store.close()
    log.close()
    if drop is not None:
        drop()


def _success(event: str, request_id: str) -> AuditRecord:
    return AuditRecord(actor="anna", event=event, outcome="success",
                       details={"request_id": request_id, "resource": 1})


def _refusal(request_id: str, *, method: str = QUERY, claimed: bool) -> AuditRecord:
    details: dict[str, Any] = {"request_id": request_id, "method": method,
                               "code": "UNAVAILABLE", "reason": "UPSTREAM_DOWN"}
    if claimed:
        details["request_claimed"] = True
    return AuditRecord(actor="anna", event="refusal", outcome="refused", details=details)


def _claimed(gw: Any) -> dict[str, tuple[str, str]]:
    return _claimed_in(gw.store)


def _claimed_in(store: Store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(seen_requests.c.request_id, seen_requests.c.user_id,
                                      seen_requests.c.kind)).all()
    return {r.request_id: (r.user_id, r.kind) for r in rows}


def test_recent_claims_come_back_from_the_log_and_only_those(parts: Any) -> None:
    gw, log = parts.build(), parts.log  # nothing to restore yet
    wiring = gw.ops_wiring
    log.append_sync(_success("query", "old-1"))
    time.sleep(0.01)
    since = now_utc()
    time.sleep(0.01)
    for record in (
        _success("query", "q-ok"),
        _refusal("q-late", claimed=True),    # refused after the claim (e.g. upstream down)
        _refusal("q-early", claimed=False),  # refused before it (e.g. stale): never claimed
        _success("admin", "a-1"),
        _refusal("a-2", method=ADMIN, claimed=True),
        AuditRecord(actor="anna", event="login", outcome="success",
                    details={"request_id": "login-1"}),  # logins claim nothing
    ):
        log.append_sync(record)

    assert wiring.restore_replay_guard(gw.store, since) == 4
    claimed = _claimed(gw)
    assert {k: v for k, v in claimed.items()} == {
        "q-ok": ("anna", "query"), "q-late": ("anna", "query"),
        "a-1": ("anna", "admin"), "a-2": ("anna", "admin"),
    }
    assert wiring.restore_replay_guard(gw.store, since) == 0  # idempotent

    with pytest.raises(ReplayDetected):
        gw.store.claim_request_id("q-ok", user_id="anna", kind="query")
    gw.store.claim_request_id("q-early", user_id="anna", kind="query")  # was never used
    gw.store.claim_request_id("old-1", user_id="anna", kind="query")  # stale anyway


def test_assembly_restores_ids_lost_from_the_database(parts: Any) -> None:
    log = parts.log
    log.append_sync(_success("query", "lost-1"))
    log.append_sync(_refusal("lost-2", claimed=True))
    store = Store(parts.config.effective_database_url).open()
    store.claim_request_id("kept", user_id="anna", kind="query")
    assert set(_claimed_in(store)) == {"kept"}  # lost-1 and lost-2: commits lost (simulated)

    gw = parts.build(store)  # as at the start of a gateway: before any call is served

    assert set(_claimed(gw)) == {"kept", "lost-1", "lost-2"}
    with pytest.raises(ReplayDetected):
        gw.store.claim_request_id("lost-1", user_id="anna", kind="query")
