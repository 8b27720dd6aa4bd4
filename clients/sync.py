"""The synchronous gateway client: a thin executor of the plans in :mod:`clients._core`.

It performs each :class:`~clients._core.Call` as a blocking stub call, runs token
signatures inline and calls the SMS code provider directly.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients import _core as core
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientError
from signing.api import Signer

T = TypeVar("T")


class GatewayClient(core.ClientCore):
    """A TLS connection to the gateway and, after :meth:`login`, a user session.

    ``gateway_certificate`` pins the certificate(s) whose key signs query results (a
    path, PEM/DER bytes, or certificates); every result is verified against it before
    :meth:`query` returns. ``ca_file`` is the TLS trust anchor; ``client_cert_file`` /
    ``client_key_file`` give an optional TLS client certificate. ``server_name``
    overrides the TLS host name check (when dialing an IP address).
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
            lambda: grpc.secure_channel(target, creds, options=c.channel_options(server_name)),
            gateway_certificate=gateway_certificate, target=target, timeout=timeout,
            session_token=session_token, user_id=user_id,
        )

    def _run(self, plan: core.Plan[T]) -> T:
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
                reply = self._perform(step)
            except ClientError as exc:
                error = exc

    def _perform(self, step: core.Step) -> Any:
        if isinstance(step, core.Call):
            method, metadata = self._bind(step)
            try:
                response = method(step.request, metadata=metadata, timeout=self.timeout)
            except grpc.RpcError as exc:
                raise c.client_error(step.rpc.method, exc) from None
            return step.reply(response)
        if isinstance(step, core.TokenWork):
            return step.run()
        if isinstance(step, core.Pause):
            time.sleep(step.seconds)
            return None
        return step.ask()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- authentication (R5) and consent (R6) ---------------------------------------------
    def login(
        self,
        user_id: str,
        signer: Signer,
        certificate: x509.Certificate | bytes | None = None,
        *,
        factor: str = "sms",
        sms_code_provider: Callable[[str], str] | None = None,
        device_key: SoftwareDeviceKey | None = None,
        biometric_sample: bytes | None = None,
        pin_changed_at: _dt.datetime | None = None,
    ) -> c.LoginResult:
        """Multi-factor login: token signature over the challenge, then SMS or biometrics.

        For ``factor="sms"``, ``sms_code_provider(masked_destination)`` returns the code
        the user received. For ``"biometric"``, ``device_key`` signs the device challenge
        after a local match of ``biometric_sample``. On success the session token is kept
        on this client and used for every later call. ``pin_changed_at``: when the
        token's PIN was last changed (``signing.pin_ages``), reported to the gateway
        (§12); the result's ``pin_warning`` says when it is overdue or unknown.
        """
        return self._run(
            core.login(
                self, user_id, signer, certificate, factor=factor,
                sms_code_provider=sms_code_provider, device_key=device_key,
                biometric_sample=biometric_sample, pin_changed_at=pin_changed_at,
            )
        )

    def logout(self) -> None:
        """End the session on the gateway and forget the token."""
        self._run(core.logout(self))

    def get_consent(self) -> c.Consent:
        """The current terms of use (its digest is checked before signing)."""
        return self._run(core.get_consent(self))

    def sign_consent(
        self, consent: c.Consent | None = None, *, signer: Signer | None = None
    ) -> c.ConsentSigned:
        """Sign the consent (fetched if not given) on the token and record it (R6)."""
        return self._run(core.sign_consent(self, consent, signer))

    # -- queries (R1, R2, R7) ---------------------------------------------------------------
    def list_resources(self) -> list[c.ResourceInfo]:
        return self._run(core.list_resources(self))

    def prepare_query(
        self,
        resource: int,
        parameters: Mapping[str, str],
        basis: str,
        task_ref: str,
        justification: str,
        *,
        signer: Signer | None = None,
    ) -> c.PreparedQuery:
        """Build and sign a query without sending it (see :meth:`send_query`)."""
        return self._run(
            core.prepare_query(self, resource, parameters, basis, task_ref, justification, signer)
        )

    def send_query(self, prepared: c.PreparedQuery) -> c.QueryOutcome:
        """Send a signed query and verify the gateway's signed answer."""
        return self._run(core.send_query(self, prepared))

    def query(
        self,
        resource: int,
        parameters: Mapping[str, str],
        basis: str,
        task_ref: str,
        justification: str,
        *,
        signer: Signer | None = None,
    ) -> c.QueryOutcome:
        """Sign a query on the user's token, send it, verify the gateway-signed result."""
        return self._run(
            core.query(self, resource, parameters, basis, task_ref, justification, signer)
        )

    def service_status(self) -> c.ServiceStatusInfo:
        """Serving or not, and published maintenance windows (R10). Needs no session."""
        return self._run(core.service_status(self))

    # -- audit (R11) ------------------------------------------------------------------------
    def checkpoint(self) -> c.CheckpointInfo:
        return self._run(core.checkpoint(self))

    def inclusion_proof(self, seq: int, tree_size: int = 0) -> c.InclusionProofInfo:
        return self._run(core.inclusion_proof(self, seq, tree_size))

    def consistency_proof(self, first: int, second: int) -> c.ConsistencyProofInfo:
        return self._run(core.consistency_proof(self, first, second))

    def prove_receipt(self, receipt: c.Receipt) -> int:
        """Fetch the latest checkpoint and the receipt's inclusion proof; verify both offline
        against the pinned gateway key (see :func:`clients._common.verify_receipt`).
        Returns the checkpoint's tree size."""
        return self._run(core.prove_receipt(self, receipt))

    # -- administration ---------------------------------------------------------------------
    def admin(self, command: ProtoMessage, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Sign and execute one admin command (``EnrollUser``, ``RevokeCertificate``, ...)."""
        return self._run(core.admin(self, command, signer))
