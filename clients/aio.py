"""The asyncio gateway client: the same surface as :class:`clients.GatewayClient`.

Token signatures block (a PKCS#11 call), so they run in a worker thread through
:func:`asyncio.to_thread`; everything else is native ``grpc.aio``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import grpc.aio
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientUsageError
from signing.api import Signer
from siogw_api.v1 import (
    audit_pb2,
    auth_pb2,
    query_pb2,
)

SmsCodeProvider = Callable[[str], str] | Callable[[str], Awaitable[str]]


class AsyncGatewayClient(c.ClientCore):
    """Asyncio twin of :class:`clients.GatewayClient`; see there for the arguments.

    Create it inside a running event loop (``grpc.aio`` binds the channel to it).
    """

    def __init__(
        self,
        target: str,
        *,
        ca_file: str | Path,
        gateway_certificate: Any,
        client_cert_file: str | Path | None = None,
        client_key_file: str | Path | None = None,
        server_name: str | None = None,
        session_token: str | None = None,
        user_id: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        creds = c.channel_credentials(ca_file, client_cert_file, client_key_file)
        self._attach(
            lambda: grpc.aio.secure_channel(
                target, creds, options=c.channel_options(server_name)
            ),
            gateway_certificate=gateway_certificate, target=target, timeout=timeout,
            session_token=session_token, user_id=user_id,
        )

    async def _call(self, name: str, method: Any, request: Any, *, auth: bool = True) -> Any:
        try:
            return await method(request, metadata=self._metadata(auth=auth), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise c.client_error(name, exc) from None

    def _signer(self, signer: Signer | None) -> Signer:
        chosen = signer or self.signer
        if chosen is None:
            raise ClientUsageError("no signer: log in first or pass signer=")
        return chosen

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- authentication (R5) and consent (R6) ---------------------------------------------
    async def login(
        self,
        user_id: str,
        signer: Signer,
        certificate: x509.Certificate | bytes | None = None,
        *,
        factor: str = "sms",
        sms_code_provider: SmsCodeProvider | None = None,
        device_key: SoftwareDeviceKey | None = None,
        biometric_sample: bytes | None = None,
    ) -> c.LoginResult:
        """See :meth:`clients.GatewayClient.login`; ``sms_code_provider`` may be async."""
        factor_value = c.factor_value(factor)
        if factor == "sms" and sms_code_provider is None:
            raise ClientUsageError("SMS login needs sms_code_provider")
        if factor == "biometric" and (device_key is None or biometric_sample is None):
            raise ClientUsageError("biometric login needs device_key and biometric_sample")
        begin = await self._call(
            "BeginLogin",
            self._auth.BeginLogin,
            auth_pb2.BeginLoginRequest(
                user_id=user_id, certificate_der=c.certificate_der(signer, certificate)
            ),
            auth=False,
        )
        signed = await asyncio.to_thread(c.sign_login_challenge, bytes(begin.challenge), signer)
        proved = await self._call(
            "ProveLogin",
            self._auth.ProveLogin,
            auth_pb2.ProveLoginRequest(
                login_id=begin.login_id, signed_challenge=signed, factor=factor_value
            ),
            auth=False,
        )
        if factor == "sms":
            assert sms_code_provider is not None
            code = sms_code_provider(proved.sms_destination)
            if inspect.isawaitable(code):
                code = await code
            complete = auth_pb2.CompleteLoginRequest(login_id=begin.login_id, sms_code=str(code))
        else:
            assert device_key is not None and biometric_sample is not None
            assertion = device_key.assert_user(bytes(proved.device_challenge), biometric_sample)
            complete = auth_pb2.CompleteLoginRequest(
                login_id=begin.login_id,
                biometric=auth_pb2.BiometricAssertion(
                    device_key_id=assertion.device_key_id,
                    signature=assertion.signature,
                    method=assertion.method,
                ),
            )
        done = await self._call("CompleteLogin", self._auth.CompleteLogin, complete, auth=False)
        self.session_token = done.session_token
        self.user_id = user_id
        self.signer = signer
        return c.LoginResult(
            user_id=user_id,
            session_token=done.session_token,
            expires_at=done.expires_at,
            consent_required=done.consent_required,
            consent_version=done.consent_version,
            factor=factor,
            receipt=c.receipt_or_none(done),
        )

    async def logout(self) -> None:
        if self.session_token:
            await self._call("Logout", self._auth.Logout, auth_pb2.LogoutRequest())
        self.session_token = None

    async def get_consent(self) -> c.Consent:
        msg = await self._call("GetConsent", self._auth.GetConsent, auth_pb2.GetConsentRequest())
        return c.consent_from_proto(msg)

    async def sign_consent(
        self, consent: c.Consent | None = None, *, signer: Signer | None = None
    ) -> c.ConsentSigned:
        if consent is None:
            consent = await self.get_consent()
        if not self.user_id:
            raise ClientUsageError("not logged in: call login() first")
        envelope = await asyncio.to_thread(
            c.sign_consent, consent, self.user_id, self._signer(signer)
        )
        msg = await self._call(
            "SignConsent", self._auth.SignConsent, auth_pb2.SignConsentRequest(consent=envelope)
        )
        return c.ConsentSigned(signed_at=msg.signed_at, receipt=c.receipt_or_none(msg))

    # -- queries --------------------------------------------------------------------------
    async def list_resources(self) -> list[c.ResourceInfo]:
        msg = await self._call(
            "ListResources", self._query.ListResources, query_pb2.ListResourcesRequest()
        )
        return c.resources_from_proto(msg)

    async def prepare_query(
        self,
        resource: int,
        parameters: Mapping[str, str],
        basis: str,
        task_ref: str,
        justification: str,
        *,
        signer: Signer | None = None,
    ) -> c.PreparedQuery:
        query = c.build_query(resource, parameters, basis, task_ref, justification)
        return await asyncio.to_thread(c.prepare_query, query, self._signer(signer))

    async def send_query(self, prepared: c.PreparedQuery) -> c.QueryOutcome:
        response = await self._call("Query", self._query.Query, prepared.request())
        return c.verify_result(response, prepared, self._verifier)

    async def query(
        self,
        resource: int,
        parameters: Mapping[str, str],
        basis: str,
        task_ref: str,
        justification: str,
        *,
        signer: Signer | None = None,
    ) -> c.QueryOutcome:
        prepared = await self.prepare_query(
            resource, parameters, basis, task_ref, justification, signer=signer
        )
        return await self.send_query(prepared)

    async def service_status(self) -> c.ServiceStatusInfo:
        msg = await self._call(
            "GetServiceStatus",
            self._query.GetServiceStatus,
            query_pb2.GetServiceStatusRequest(),
            auth=False,
        )
        return c.status_from_proto(msg)

    # -- audit ----------------------------------------------------------------------------
    async def checkpoint(self) -> c.CheckpointInfo:
        msg = await self._call(
            "GetCheckpoint",
            self._audit.GetCheckpoint,
            audit_pb2.GetCheckpointRequest(),
            auth=bool(self.session_token),
        )
        return c.checkpoint_from_proto(msg)

    async def inclusion_proof(self, seq: int, tree_size: int = 0) -> c.InclusionProofInfo:
        msg = await self._call(
            "GetInclusionProof",
            self._audit.GetInclusionProof,
            audit_pb2.GetInclusionProofRequest(seq=seq, tree_size=tree_size),
            auth=bool(self.session_token),
        )
        return c.proof_from_proto(msg)

    async def consistency_proof(self, first: int, second: int) -> c.ConsistencyProofInfo:
        msg = await self._call(
            "GetConsistencyProof",
            self._audit.GetConsistencyProof,
            audit_pb2.GetConsistencyProofRequest(first=first, second=second),
            auth=bool(self.session_token),
        )
        return c.consistency_from_proto(msg)

    async def prove_receipt(self, receipt: c.Receipt) -> int:
        """See :meth:`clients.GatewayClient.prove_receipt`."""
        checkpoint = await self.checkpoint()
        proof = await self.inclusion_proof(receipt.seq, checkpoint.tree_size)
        return c.verify_receipt(receipt, proof, checkpoint, self._verifier.public_keys)

    # -- administration -------------------------------------------------------------------
    async def admin(self, command: ProtoMessage, *, signer: Signer | None = None) -> c.AdminOutcome:
        wrapped = c.admin_command(command)
        request = await asyncio.to_thread(c.sign_admin, wrapped, self._signer(signer))
        msg = await self._call("Execute", self._admin.Execute, request)
        return c.AdminOutcome(message=msg.message, receipt=c.receipt_or_none(msg))
