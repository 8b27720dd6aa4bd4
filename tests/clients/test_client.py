"""GatewayClient / AsyncGatewayClient against a real gateway (TLS, SoftHSM keys, audit).

Every test taking ``connect`` runs twice: over the blocking client and over the asyncio
client (behind the blocking adapter of ``conftest.BlockingAsyncClient``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from clients import (
    AsyncGatewayClient,
    ClientError,
    ClientUsageError,
    ResultVerificationError,
)
from siogw import demo

from .conftest import ClientWorld

CASE = "CASE-T-1"
Connect = Callable[..., Any]


def logged_in(
    cw: ClientWorld, connect: Connect, name: str = "analyst", *, consent: bool = True
) -> Any:
    client = connect()
    demo.login(cw.world, client, cw.person(name))
    if consent:
        client.sign_consent()
    return client


#: A user who has not signed the consent yet, per client kind.
FRESH = {"sync": "analyst", "asyncio": "bota"}


def test_login_consent_query_and_receipt(
    client_world: ClientWorld, connect: Connect, client_kind: str
) -> None:
    with connect() as client:
        result = demo.login(client_world.world, client, client_world.person(FRESH[client_kind]))
        assert result.session_token and result.expires_at.endswith("+05:00")
        assert result.consent_required
        with pytest.raises(ClientError) as ei:
            client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, "before consent")
        assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "consent" in ei.value.server_message
        consent = client.get_consent()
        signed = client.sign_consent(consent)
        assert signed.signed_at.endswith("+05:00")

        resources = client.list_resources()
        assert len(resources) == 52
        assert {r.number: r.access_right for r in resources}[11] == "truncated"

        out = client.query(11, demo.demo_parameters(11), demo.BASIS, CASE, "pension check")
        assert out.truncated and out.access_right == "truncated" and out.resource == 11
        records = out.data["records"]
        assert records and not any("amount" in k for rec in records for k in rec)
        assert out.receipt is not None
        assert out.result_envelope.payload_type == "application/vnd.siogw.result+protobuf"
        assert client.prove_receipt(out.receipt) >= out.receipt.seq + 1

        status = client.service_status()
        assert status.serving and status.now.endswith("+05:00")


def test_result_pinned_to_another_certificate_is_refused(
    client_world: ClientWorld, connect: Connect
) -> None:
    analyst = client_world.person("analyst")
    w = client_world.world
    # not the gateway's certificate: the result must not verify
    with connect(gateway_certificate=analyst.cert_file) as client:
        demo.login(w, client, analyst)
        client.sign_consent()
        with pytest.raises(ResultVerificationError, match="did not verify"):
            client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, "wrong pin")


def test_server_errors_carry_status_and_message(
    client_world: ClientWorld, connect: Connect
) -> None:
    with logged_in(client_world, connect) as client:
        with pytest.raises(ClientError) as ei:
            client.query(1, {"iin": "123456789012"}, demo.BASIS, CASE, "bad checksum")
        assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert ei.value.server_message
        assert "INVALID_ARGUMENT" in ei.value.diagnostics()
        with pytest.raises(ClientError) as ei:
            client.query(1, demo.demo_parameters(1), "curiosity", CASE, "no such basis")
        assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_wrong_sms_code_and_no_session(client_world: ClientWorld, connect: Connect) -> None:
    with connect() as client:
        with pytest.raises(ClientUsageError):
            client.list_resources()
        with pytest.raises(ClientError) as ei:
            client.login(
                "analyst",
                client_world.person("analyst").signer(),
                sms_code_provider=lambda _dest: "000000",
            )
        assert ei.value.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        assert client.session_token is None


def test_async_client_biometric_login_and_concurrent_queries(client_world: ClientWorld) -> None:
    from clients.biometric import SoftwareDeviceKey

    analyst = client_world.person("analyst")
    w = client_world.world

    async def run() -> list[Any]:
        async with AsyncGatewayClient(
            f"127.0.0.1:{client_world.port}",
            ca_file=w.ca_file,
            gateway_certificate=w.gateway_cert,
            server_name=demo.TLS_NAME,
        ) as client:
            await client.login(
                analyst.user_id,
                analyst.signer(),
                factor="biometric",
                device_key=SoftwareDeviceKey.load(analyst.device_file),
                biometric_sample=demo.biometric_sample(analyst),
            )
            await client.sign_consent()
            outs = await asyncio.gather(
                *(
                    client.query(r, demo.demo_parameters(r), demo.BASIS, CASE, "async")
                    for r in (1, 11, 50, 51)
                )
            )
            assert outs[1].receipt is not None
            await client.prove_receipt(outs[1].receipt)
            await client.logout()
            return list(outs)

    outs = asyncio.run(run())
    assert [o.resource for o in outs] == [1, 11, 50, 51]
    assert [o.truncated for o in outs] == [False, True, False, False]


def test_admin_roles_are_enforced(client_world: ClientWorld, connect: Connect) -> None:
    from siogw_api.v1 import admin_pb2

    w = client_world.world
    with connect() as op_client:
        demo.login(w, op_client, client_world.person("operator"))
        with pytest.raises(ClientError) as ei:
            op_client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, "operator may not")
        assert ei.value.code in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    with connect() as sec_client:
        demo.login(w, sec_client, client_world.person("security"))
        with pytest.raises(ClientError) as ei:
            sec_client.admin(admin_pb2.EnrollUser(user_id="x", full_name="X", role="agency_user"))
        assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED


#: Whom the revocation test revokes, per client kind (a revoked user stays revoked).
REVOKED = {"sync": "carol", "asyncio": "dave"}


def test_revocation_ends_session_and_refuses_login(
    client_world: ClientWorld, connect: Connect, client_kind: str
) -> None:
    from siogw_api.v1 import admin_pb2

    w = client_world.world
    name = REVOKED[client_kind]
    person = client_world.person(name)
    with logged_in(client_world, connect, name) as client:
        assert client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, "ok").resource == 1
        with connect() as sec_client:
            demo.login(w, sec_client, client_world.person("security"))
            out = sec_client.admin(
                admin_pb2.RevokeCertificate(
                    serial_hex=format(person.certificate().serial_number, "x"),
                    reason="keyCompromise",
                )
            )
            assert "revoked" in out.message and out.receipt is not None
        with pytest.raises(ClientError) as ei:
            client.query(1, demo.demo_parameters(1), demo.BASIS, CASE, "after revocation")
        assert ei.value.code == grpc.StatusCode.UNAUTHENTICATED
    with connect() as again, pytest.raises(ClientError) as ei:
        demo.login(w, again, person)
    assert "revoked" in ei.value.server_message


def test_published_maintenance_is_visible_without_a_session(
    client_world: ClientWorld, connect: Connect, client_kind: str
) -> None:
    import datetime as dt

    from siogw_api.timeutil import astana_iso, now_utc
    from siogw_api.v1 import admin_pb2, common_pb2

    description = f"planned maintenance (client test, {client_kind})"
    start = now_utc() + dt.timedelta(days=3)
    window = common_pb2.MaintenanceWindow(
        id=f"mw-client-test-{client_kind}",
        starts_at=astana_iso(start),
        ends_at=astana_iso(start + dt.timedelta(hours=2)),
        description=description,
    )
    with connect() as op_client:
        demo.login(client_world.world, op_client, client_world.person("operator"))
        out = op_client.admin(admin_pb2.PublishMaintenance(window=window))
        assert out.receipt is not None
    with connect() as anonymous:
        status = anonymous.service_status()
    assert status.serving and status.current is None
    listed = {w.description: w for w in status.windows}
    assert description in listed
    assert listed[description].starts_at.endswith("+05:00")


def test_biometric_login_audit_proofs_and_logout(
    client_world: ClientWorld, connect: Connect
) -> None:
    from clients.biometric import SoftwareDeviceKey

    analyst = client_world.person("analyst")
    with connect() as client:
        result = client.login(
            analyst.user_id,
            analyst.signer(),
            factor="biometric",
            device_key=SoftwareDeviceKey.load(analyst.device_file),
            biometric_sample=demo.biometric_sample(analyst),
        )
        assert result.factor == "biometric" and client.session_token == result.session_token
        client.sign_consent()
        out = client.query(50, demo.demo_parameters(50), demo.BASIS, CASE, "biometric")
        assert out.receipt is not None and not out.truncated
        first = client.checkpoint()
        assert client.prove_receipt(out.receipt) >= out.receipt.seq + 1
        proof = client.inclusion_proof(out.receipt.seq, first.tree_size)
        assert proof.leaf_hash == out.receipt.leaf_hash and proof.tree_size == first.tree_size
        later = client.checkpoint()
        consistency = client.consistency_proof(first.tree_size, later.tree_size)
        assert (consistency.first, consistency.second) == (first.tree_size, later.tree_size)
        prepared = client.prepare_query(1, demo.demo_parameters(1), demo.BASIS, CASE, "two-step")
        assert client.send_query(prepared).request_id == prepared.request_id
        client.logout()
        assert client.session_token is None
        with pytest.raises(ClientUsageError):
            client.list_resources()
        client.logout()  # without a session: nothing to end, no call
