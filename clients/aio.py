"""The asyncio gateway client: the same surface as :class:`clients.GatewayClient`.

A thin executor of the plans in :mod:`clients._core`: each
:class:`~clients._core.Call` is awaited on a native ``grpc.aio`` stub; token signatures
block (a PKCS#11 call), so they run in a worker thread through :func:`asyncio.to_thread`;
an SMS code provider may be a coroutine function.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients import _core as core
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientError
from signing.api import Signer

T = TypeVar("T")

SmsCodeProvider = Callable[[str], str] | Callable[[str], Awaitable[str]]


class AsyncGatewayClient(core.ClientCore):
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

    async def _run(self, plan: core.Plan[T]) -> T:
        """Drive ``plan`` to its result, performing each step it yields."""
        reply: Any = None
        error: ClientError | None = None
        while True:
            try:
                # A refused call is thrown into the plan, which may catch it (a retry).
                step = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            error = None
            try:
                reply = await self._perform(step)
            except ClientError as exc:
                error = exc

    async def _perform(self, step: core.Step) -> Any:
        if isinstance(step, core.Call):
            method, metadata = self._bind(step)
            try:
                response = await method(step.request, metadata=metadata, timeout=self.timeout)
            except grpc.RpcError as exc:
                raise c.client_error(step.rpc.method, exc) from None
            return step.reply(response)
        if isinstance(step, core.TokenWork):
            return await asyncio.to_thread(step.run)
        if isinstance(step, core.Pause):
            await asyncio.sleep(step.seconds)
            return None
        answer = step.ask()
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

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
        pin_changed_at: _dt.datetime | None = None,
    ) -> c.LoginResult:
        """See :meth:`clients.GatewayClient.login`; ``sms_code_provider`` may be async."""
        return await self._run(
            core.login(
                self, user_id, signer, certificate, factor=factor,
                sms_code_provider=sms_code_provider, device_key=device_key,
                biometric_sample=biometric_sample, pin_changed_at=pin_changed_at,
            )
        )

    async def logout(self) -> None:
        await self._run(core.logout(self))

    async def get_consent(self) -> c.Consent:
        return await self._run(core.get_consent(self))

    async def sign_consent(
        self, consent: c.Consent | None = None, *, signer: Signer | None = None
    ) -> c.ConsentSigned:
        return await self._run(core.sign_consent(self, consent, signer))

    # -- queries --------------------------------------------------------------------------
    async def list_resources(self) -> list[c.ResourceInfo]:
        return await self._run(core.list_resources(self))

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
        return await self._run(
            core.prepare_query(self, resource, parameters, basis, task_ref, justification, signer)
        )

    async def send_query(self, prepared: c.PreparedQuery) -> c.QueryOutcome:
        return await self._run(core.send_query(self, prepared))

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
        return await self._run(
            core.query(self, resource, parameters, basis, task_ref, justification, signer)
        )

    async def service_status(self) -> c.ServiceStatusInfo:
        return await self._run(core.service_status(self))

    # -- audit ----------------------------------------------------------------------------
    async def checkpoint(self) -> c.CheckpointInfo:
        return await self._run(core.checkpoint(self))

    async def inclusion_proof(self, seq: int, tree_size: int = 0) -> c.InclusionProofInfo:
        return await self._run(core.inclusion_proof(self, seq, tree_size))

    async def consistency_proof(self, first: int, second: int) -> c.ConsistencyProofInfo:
        return await self._run(core.consistency_proof(self, first, second))

    async def prove_receipt(self, receipt: c.Receipt) -> int:
        """See :meth:`clients.GatewayClient.prove_receipt`."""
        return await self._run(core.prove_receipt(self, receipt))

    # -- administration -------------------------------------------------------------------
    async def admin(self, command: ProtoMessage, *, signer: Signer | None = None) -> c.AdminOutcome:
        return await self._run(core.admin(self, command, signer))
