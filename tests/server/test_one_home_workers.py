"""One home for each fact, through a worker process (issue 11).

A block, an unblock, a revocation and a new certificate made through the operations
domain are rows of the one ``users`` / ``revocations`` / ``certificates`` table, which
the session read of every process joins: the very next call over a connection held by
a worker (which has no operations domain of its own) sees each of them. The log host's
side is covered over gRPC in ``tests/server/test_ops_grpc.py``.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc import aio

from server.admin import execute
from server.config import load_config
from server.ops import Actor, Operations, Role
from server.store import Store
from server.store.certificates import fingerprint
from signing import load_signer
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.trust import TrustStore
from siogw import demo
from siogw_api.v1 import admin_pb2
from tests.server.test_workers import ANALYST, Client, refusal, serve

OPERATOR = Actor("olga", Role.OPERATOR)
SECURITY = Actor("sam", Role.SECURITY_OFFICER)


@pytest.fixture(scope="module")
def world(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory) -> demo.World:
    home = tmp_path_factory.mktemp("onehome")
    world = demo.build_world(home, people=(ANALYST,), token_store=softhsm_store,
                             label_prefix=f"oh{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    store = Store(load_config(home, env={}).effective_database_url).open()
    analyst = world.people["analyst"]
    try:  # enrolled as `siogw admin` does: a user the operations domain sees all the same
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=analyst.user_id, full_name=analyst.full_name, role=analyst.role,
            phone=analyst.phone, certificate_der=demo._der(analyst.certificate()),
        )))
    finally:
        store.close()
    return world


def test_operations_changes_are_seen_at_once_through_a_worker(
    world: demo.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIOGW_WORKERS", "2")
    analyst = world.people["analyst"]
    ca = CertificateAuthority.open(world.ca_dir)
    # The operations domain as a library over the gateway's database, in this process
    # (as the log host runs it; the worker has none).
    store = Store(load_config(world.home, env={}).effective_database_url).open()
    ops = Operations.open(store.engine, record=lambda *a: None,
                          trust=TrustStore([ca.root_certificate]),
                          index=None)  # type: ignore[arg-type]
    old_fp = fingerprint(demo._der(analyst.certificate()))
    rotated_file = world.home / "analyst-rotated.pem"
    try:
        with serve(world, "gw-onehome.log") as gw:
            (worker,) = gw.workers()

            async def scenario() -> dict[str, Any]:
                client = Client(world, gw.port)
                seen: dict[str, Any] = {}
                try:
                    by_worker, _by_host = await client.split(worker, least=1)
                    ch = by_worker[0]

                    async def one_query() -> Any:
                        (q,) = await client.prepare(1)
                        return await client.query(ch, q)

                    async def refused() -> tuple[grpc.StatusCode, str, str]:
                        with pytest.raises(aio.AioRpcError) as ei:
                            await one_query()
                        return refusal(ei.value)

                    await client.login(ch)
                    await client.consent(ch)
                    await one_query()
                    await asyncio.to_thread(ops.lifecycle.block, OPERATOR, analyst.user_id,
                                            "suspension", "order 12")
                    seen["blocked"] = await refused()
                    await asyncio.to_thread(ops.lifecycle.unblock, OPERATOR, analyst.user_id,
                                            "order 13")
                    await client.login(ch)
                    seen["unblocked"] = (await one_query()).receipt is not None
                    # a new certificate for the same token key (a renewal), then the old one
                    # revoked: the session bound to the old one fails, the new one logs in
                    signer = client.signer
                    csr = await asyncio.to_thread(build_csr, signer,
                                                  "CN=Aigerim Analyst renewed,C=KZ")
                    cert = ca.issue(csr, "user", 30)
                    rotated_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
                    await asyncio.to_thread(
                        ops.certificates.register, SECURITY, analyst.user_id,
                        cert.public_bytes(serialization.Encoding.DER))
                    await asyncio.to_thread(ops.certificates.revoke, SECURITY, old_fp,
                                            "superseded")
                    seen["revoked"] = await refused()
                    client.signer = load_signer(analyst.key_uri, certificate=rotated_file)
                    await client.login(ch)
                    await client.consent(ch)
                    seen["new_certificate"] = (await one_query()).receipt is not None
                    seen["still_by_worker"] = (await client.held_by_worker([ch], worker))[0]
                finally:
                    await client.close()
                return seen

            seen = asyncio.run(scenario())
    finally:
        store.close()
    assert seen["blocked"][0] in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED), seen
    assert seen["unblocked"] is True
    assert seen["revoked"][0] in (grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED), seen
    assert seen["new_certificate"] is True
    assert seen["still_by_worker"] is True  # every call above went through the worker
