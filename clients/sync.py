"""The synchronous gateway client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientUsageError
from signing.api import Signer
from siogw_api.v1 import (
    admin_pb2,
    audit_pb2,
    auth_pb2,
    query_pb2,
)

T = TypeVar("T")


class GatewayClient(c.ClientCore):
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

    def _call(self, name: str, method: Callable[..., T], request: Any, *, auth: bool = True) -> T:
        try:
            return method(request, metadata=self._metadata(auth=auth), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise c.client_error(name, exc) from None

    def _signer(self, signer: Signer | None) -> Signer:
        chosen = signer or self.signer
        if chosen is None:
            raise ClientUsageError("no signer: log in first or pass signer=")
        return chosen

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
    ) -> c.LoginResult:
        """Multi-factor login: token signature over the challenge, then SMS or biometrics.

        For ``factor="sms"``, ``sms_code_provider(masked_destination)`` returns the code
        the user received. For ``"biometric"``, ``device_key`` signs the device challenge
        after a local match of ``biometric_sample``. On success the session token is kept
        on this client and used for every later call.
        """
        factor_value = c.factor_value(factor)
        if factor == "sms" and sms_code_provider is None:
            raise ClientUsageError("SMS login needs sms_code_provider")
        if factor == "biometric" and (device_key is None or biometric_sample is None):
            raise ClientUsageError("biometric login needs device_key and biometric_sample")
        begin = self._call(
            "BeginLogin",
            self._auth.BeginLogin,
            auth_pb2.BeginLoginRequest(
                user_id=user_id, certificate_der=c.certificate_der(signer, certificate)
            ),
            auth=False,
        )
        proved = self._call(
            "ProveLogin",
            self._auth.ProveLogin,
            auth_pb2.ProveLoginRequest(
                login_id=begin.login_id,
                signed_challenge=c.sign_login_challenge(bytes(begin.challenge), signer),
                factor=factor_value,
            ),
            auth=False,
        )
        if factor == "sms":
            assert sms_code_provider is not None
            complete = auth_pb2.CompleteLoginRequest(
                login_id=begin.login_id, sms_code=sms_code_provider(proved.sms_destination)
            )
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
        done = self._call("CompleteLogin", self._auth.CompleteLogin, complete, auth=False)
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

    def logout(self) -> None:
        """End the session on the gateway and forget the token."""
        if self.session_token:
            self._call("Logout", self._auth.Logout, auth_pb2.LogoutRequest())
        self.session_token = None

    def get_consent(self) -> c.Consent:
        """The current terms of use (its digest is checked before signing)."""
        msg = self._call("GetConsent", self._auth.GetConsent, auth_pb2.GetConsentRequest())
        return c.consent_from_proto(msg)

    def sign_consent(
        self, consent: c.Consent | None = None, *, signer: Signer | None = None
    ) -> c.ConsentSigned:
        """Sign the consent (fetched if not given) on the token and record it (R6)."""
        if consent is None:
            consent = self.get_consent()
        if not self.user_id:
            raise ClientUsageError("not logged in: call login() first")
        envelope = c.sign_consent(consent, self.user_id, self._signer(signer))
        msg = self._call(
            "SignConsent", self._auth.SignConsent, auth_pb2.SignConsentRequest(consent=envelope)
        )
        return c.ConsentSigned(signed_at=msg.signed_at, receipt=c.receipt_or_none(msg))

    # -- queries (R1, R2, R7) ---------------------------------------------------------------
    def list_resources(self) -> list[c.ResourceInfo]:
        msg = self._call(
            "ListResources", self._query.ListResources, query_pb2.ListResourcesRequest()
        )
        return c.resources_from_proto(msg)

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
        query = c.build_query(resource, parameters, basis, task_ref, justification)
        return c.prepare_query(query, self._signer(signer))

    def send_query(self, prepared: c.PreparedQuery) -> c.QueryOutcome:
        """Send a signed query and verify the gateway's signed answer."""
        response = self._call("Query", self._query.Query, prepared.request())
        return c.verify_result(response, prepared, self._verifier)

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
        prepared = self.prepare_query(
            resource, parameters, basis, task_ref, justification, signer=signer
        )
        return self.send_query(prepared)

    def service_status(self) -> c.ServiceStatusInfo:
        """Serving or not, and published maintenance windows (R10). Needs no session."""
        msg = self._call(
            "GetServiceStatus",
            self._query.GetServiceStatus,
            query_pb2.GetServiceStatusRequest(),
            auth=False,
        )
        return c.status_from_proto(msg)

    # -- audit (R11) ------------------------------------------------------------------------
    def checkpoint(self) -> c.CheckpointInfo:
        msg = self._call(
            "GetCheckpoint",
            self._audit.GetCheckpoint,
            audit_pb2.GetCheckpointRequest(),
            auth=bool(self.session_token),
        )
        return c.checkpoint_from_proto(msg)

    def inclusion_proof(self, seq: int, tree_size: int = 0) -> c.InclusionProofInfo:
        msg = self._call(
            "GetInclusionProof",
            self._audit.GetInclusionProof,
            audit_pb2.GetInclusionProofRequest(seq=seq, tree_size=tree_size),
            auth=bool(self.session_token),
        )
        return c.proof_from_proto(msg)

    def consistency_proof(self, first: int, second: int) -> c.ConsistencyProofInfo:
        msg = self._call(
            "GetConsistencyProof",
            self._audit.GetConsistencyProof,
            audit_pb2.GetConsistencyProofRequest(first=first, second=second),
            auth=bool(self.session_token),
        )
        return c.consistency_from_proto(msg)

    def prove_receipt(self, receipt: c.Receipt) -> int:
        """Fetch the latest checkpoint and the receipt's inclusion proof; verify both offline
        against the pinned gateway key (see :func:`clients._common.verify_receipt`).
        Returns the checkpoint's tree size."""
        checkpoint = self.checkpoint()
        proof = self.inclusion_proof(receipt.seq, checkpoint.tree_size)
        return c.verify_receipt(receipt, proof, checkpoint, self._verifier.public_keys)

    # -- administration ---------------------------------------------------------------------
    def admin(self, command: ProtoMessage, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Sign and execute one admin command (``EnrollUser``, ``RevokeCertificate``, ...)."""
        request = c.sign_admin(c.admin_command(command), self._signer(signer))
        msg: admin_pb2.AdminResponse = self._call("Execute", self._admin.Execute, request)
        return c.AdminOutcome(message=msg.message, receipt=c.receipt_or_none(msg))
