"""The one client core: every gateway call described once, without I/O.

:class:`GatewayClient` (:mod:`clients.sync`) and :class:`AsyncGatewayClient`
(:mod:`clients.aio`) differ only in *how* they perform a step; *what* each operation does
is written once here.

* :class:`Rpc` describes one gateway method: its service and stub method, whether the
  call carries the session's bearer token (:class:`Session`), and the parser that turns
  the response message into the value the operation works with. The table below
  (``BEGIN_LOGIN`` ... ``EXECUTE``) lists every method the client calls.
* An operation (``login``, ``query``, ``prove_receipt``, ...) is a *plan*: a generator
  that builds the requests (with the helpers of :mod:`clients._common`), yields
  :class:`Step` objects, receives each step's result, and finally returns the typed
  result. A plan never touches a channel, a thread or the event loop.
* An executor (the ``_run`` method of each client) drives a plan: it performs a
  :class:`Call` on its stub (``stub.Method(request, metadata=..., timeout=...)``, awaited
  or not) and maps a gRPC error to :class:`~clients.errors.ClientError`; it runs
  :class:`TokenWork` (a blocking PKCS#11 signature) inline or in a worker thread; it asks
  the caller through :class:`AskCaller` (the SMS code provider, which the asyncio client
  may await); it pauses for :class:`Pause`. A call refused by the gateway is thrown
  into the plan at its ``yield`` as :class:`~clients.errors.ClientError`, so a plan may
  catch it: :func:`send_query` resends a query only when that is safe (:func:`may_resend`,
  "Retries" in ``docs/usage.md``); other plans let it propagate to the caller.

:class:`ClientCore` holds what both clients share: the pinned result verifier, the stubs
by service, and the session state (``session_token``, ``user_id``, ``signer``).
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientError, ClientUsageError
from signing.api import Signer
from signing.wire import bearer_metadata
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)

T = TypeVar("T")


# --- what one gateway method is ---------------------------------------------------------
class Service(enum.Enum):
    """The gateway's gRPC services (see :data:`STUBS` for the stub class of each)."""

    AUTH = "siogw.v1.AuthService"
    QUERY = "siogw.v1.QueryService"
    AUDIT = "siogw.v1.AuditService"
    ADMIN = "siogw.v1.AdminService"


STUBS: dict[Service, Callable[[Any], Any]] = {
    Service.AUTH: auth_pb2_grpc.AuthServiceStub,
    Service.QUERY: query_pb2_grpc.QueryServiceStub,
    Service.AUDIT: audit_pb2_grpc.AuditServiceStub,
    Service.ADMIN: admin_pb2_grpc.AdminServiceStub,
}


class Session(enum.Enum):
    """Whether a call carries the session's bearer token."""

    REQUIRED = "required"  # sent with the token; without a session: ClientUsageError
    NONE = "none"  # sent without a token (login, service status)
    IF_ANY = "if-any"  # with the token when logged in (the audit log is public)

    def sends_token(self, session_token: str | None) -> bool:
        if self is Session.IF_ANY:
            return bool(session_token)
        return self is Session.REQUIRED


def _same(msg: Any) -> Any:
    return msg


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One gateway method: ``service``'s stub method ``method``, its session rule, and the
    parser of its response message."""

    service: Service
    method: str
    session: Session
    parse: Callable[[Any], T]


BEGIN_LOGIN: Rpc[auth_pb2.BeginLoginResponse] = Rpc(
    Service.AUTH, "BeginLogin", Session.NONE, _same
)
PROVE_LOGIN: Rpc[auth_pb2.ProveLoginResponse] = Rpc(
    Service.AUTH, "ProveLogin", Session.NONE, _same
)
COMPLETE_LOGIN: Rpc[auth_pb2.CompleteLoginResponse] = Rpc(
    Service.AUTH, "CompleteLogin", Session.NONE, _same
)
LOGOUT: Rpc[Any] = Rpc(Service.AUTH, "Logout", Session.REQUIRED, _same)
GET_CONSENT: Rpc[c.Consent] = Rpc(
    Service.AUTH, "GetConsent", Session.REQUIRED, c.consent_from_proto
)
SIGN_CONSENT: Rpc[c.ConsentSigned] = Rpc(
    Service.AUTH,
    "SignConsent",
    Session.REQUIRED,
    lambda msg: c.ConsentSigned(signed_at=msg.signed_at, receipt=c.receipt_or_none(msg)),
)
LIST_RESOURCES: Rpc[list[c.ResourceInfo]] = Rpc(
    Service.QUERY, "ListResources", Session.REQUIRED, c.resources_from_proto
)
# The answer is verified against the request that was sent: see send_query.
QUERY: Rpc[query_pb2.QueryResponse] = Rpc(Service.QUERY, "Query", Session.REQUIRED, _same)
GET_SERVICE_STATUS: Rpc[c.ServiceStatusInfo] = Rpc(
    Service.QUERY, "GetServiceStatus", Session.NONE, c.status_from_proto
)
GET_CHECKPOINT: Rpc[c.CheckpointInfo] = Rpc(
    Service.AUDIT, "GetCheckpoint", Session.IF_ANY, c.checkpoint_from_proto
)
GET_INCLUSION_PROOF: Rpc[c.InclusionProofInfo] = Rpc(
    Service.AUDIT, "GetInclusionProof", Session.IF_ANY, c.proof_from_proto
)
GET_CONSISTENCY_PROOF: Rpc[c.ConsistencyProofInfo] = Rpc(
    Service.AUDIT, "GetConsistencyProof", Session.IF_ANY, c.consistency_from_proto
)
EXECUTE: Rpc[c.AdminOutcome] = Rpc(
    Service.ADMIN,
    "Execute",
    Session.REQUIRED,
    lambda msg: c.AdminOutcome(message=msg.message, receipt=c.receipt_or_none(msg)),
)


# --- the steps a plan yields ------------------------------------------------------------
@dataclass(frozen=True)
class Call(Generic[T]):
    """Perform ``rpc`` with ``request``; the plan receives ``rpc.parse(response)``."""

    rpc: Rpc[T]
    request: ProtoMessage

    def reply(self, response: Any) -> T:
        return self.rpc.parse(response)


@dataclass(frozen=True)
class TokenWork:
    """A blocking signature on the user's token (a PKCS#11 call); the plan receives
    ``run()``'s result. The asyncio client runs it in a worker thread."""

    run: Callable[[], Any]


@dataclass(frozen=True)
class AskCaller:
    """A callback of the caller (the SMS code provider); the plan receives its answer.
    The asyncio client awaits the answer when it is awaitable."""

    ask: Callable[[], Any]


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next step (a retry's back-off); the plan receives None."""

    seconds: float


Step = Call[Any] | TokenWork | AskCaller | Pause
Plan = Generator[Step, Any, T]


# --- the state both clients share -------------------------------------------------------
class ClientCore:
    """Stubs by service, the pinned verifier and the session state of one client.

    Each client passes :meth:`_attach` a callable opening its own kind of channel.
    """

    def _attach(
        self,
        open_channel: Callable[[], Any],
        *,
        gateway_certificate: Any,
        target: str,
        timeout: float,
        session_token: str | None,
        user_id: str | None,
    ) -> None:
        # The pinned certificate is loaded first: a bad one fails before a channel exists.
        self._verifier = c.PinnedGatewayVerifier(c.load_certificates(gateway_certificate))
        self._channel = channel = open_channel()
        self._stubs = {service: stub(channel) for service, stub in STUBS.items()}
        self.target = target
        self.timeout = timeout
        self.session_token = session_token
        self.user_id = user_id
        self.signer: Signer | None = None

    def _metadata(self, *, auth: bool) -> list[tuple[str, str]]:
        if not auth:
            return []
        if not self.session_token:
            raise ClientUsageError("not logged in: call login() first")
        return list(bearer_metadata(self.session_token))

    def _bind(self, call: Call[Any]) -> tuple[Callable[..., Any], list[tuple[str, str]]]:
        """The stub method to invoke for ``call`` and the metadata to send with it."""
        rpc = call.rpc
        metadata = self._metadata(auth=rpc.session.sends_token(self.session_token))
        return getattr(self._stubs[rpc.service], rpc.method), metadata

    def _signer(self, signer: Signer | None) -> Signer:
        chosen = signer or self.signer
        if chosen is None:
            raise ClientUsageError("no signer: log in first or pass signer=")
        return chosen


# --- the operations ---------------------------------------------------------------------
def login(
    client: ClientCore,
    user_id: str,
    signer: Signer,
    certificate: x509.Certificate | bytes | None,
    *,
    factor: str,
    sms_code_provider: Callable[[str], Any] | None,
    device_key: SoftwareDeviceKey | None,
    biometric_sample: bytes | None,
    pin_changed_at: _dt.datetime | None = None,
) -> Plan[c.LoginResult]:
    """Token signature over the challenge, then SMS or biometrics; keeps the session."""
    factor_value = c.factor_value(factor)
    pin_text = astana_iso(pin_changed_at) if pin_changed_at is not None else ""
    if factor == "sms" and sms_code_provider is None:
        raise ClientUsageError("SMS login needs sms_code_provider")
    if factor == "biometric" and (device_key is None or biometric_sample is None):
        raise ClientUsageError("biometric login needs device_key and biometric_sample")
    begin = yield Call(
        BEGIN_LOGIN,
        auth_pb2.BeginLoginRequest(
            user_id=user_id, certificate_der=c.certificate_der(signer, certificate)
        ),
    )
    signed = yield TokenWork(
        functools.partial(c.sign_login_challenge, bytes(begin.challenge), signer)
    )
    proved = yield Call(
        PROVE_LOGIN,
        auth_pb2.ProveLoginRequest(
            login_id=begin.login_id, signed_challenge=signed, factor=factor_value
        ),
    )
    if factor == "sms":
        assert sms_code_provider is not None
        code = yield AskCaller(functools.partial(sms_code_provider, proved.sms_destination))
        complete = auth_pb2.CompleteLoginRequest(login_id=begin.login_id, sms_code=str(code))
        complete.pin_changed_at = pin_text
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
            pin_changed_at=pin_text,
        )
    done = yield Call(COMPLETE_LOGIN, complete)
    client.session_token = done.session_token
    client.user_id = user_id
    client.signer = signer
    return c.LoginResult(
        user_id=user_id,
        session_token=done.session_token,
        expires_at=done.expires_at,
        consent_required=done.consent_required,
        consent_version=done.consent_version,
        factor=factor,
        receipt=c.receipt_or_none(done),
        pin_changed_at=done.pin_changed_at,
        pin_warning=done.pin_warning,
    )


def logout(client: ClientCore) -> Plan[None]:
    """End the session on the gateway (when there is one) and forget the token."""
    if client.session_token:
        yield Call(LOGOUT, auth_pb2.LogoutRequest())
    client.session_token = None


def get_consent(client: ClientCore) -> Plan[c.Consent]:
    consent: c.Consent = yield Call(GET_CONSENT, auth_pb2.GetConsentRequest())
    return consent


def sign_consent(
    client: ClientCore, consent: c.Consent | None, signer: Signer | None
) -> Plan[c.ConsentSigned]:
    """Sign the consent (fetched if not given) on the token and record it (R6)."""
    if consent is None:
        consent = yield from get_consent(client)
    if not client.user_id:
        raise ClientUsageError("not logged in: call login() first")
    envelope = yield TokenWork(
        functools.partial(c.sign_consent, consent, client.user_id, client._signer(signer))
    )
    signed: c.ConsentSigned = yield Call(
        SIGN_CONSENT, auth_pb2.SignConsentRequest(consent=envelope)
    )
    return signed


def list_resources(client: ClientCore) -> Plan[list[c.ResourceInfo]]:
    resources: list[c.ResourceInfo] = yield Call(
        LIST_RESOURCES, query_pb2.ListResourcesRequest()
    )
    return resources


def prepare_query(
    client: ClientCore,
    resource: int,
    parameters: Mapping[str, str],
    basis: str,
    task_ref: str,
    justification: str,
    signer: Signer | None,
) -> Plan[c.PreparedQuery]:
    """Build and sign a query without sending it."""
    query = c.build_query(resource, parameters, basis, task_ref, justification)
    prepared: c.PreparedQuery = yield TokenWork(
        functools.partial(c.prepare_query, query, client._signer(signer))
    )
    return prepared


#: How often :func:`send_query` resends a query whose request id the gateway released,
#: and the pause before each resend (seconds; doubled each time).
QUERY_RETRIES = 2
QUERY_RETRY_PAUSE = 0.5


def may_resend(error: ClientError) -> bool:
    """Whether a refused query may be sent again with the same signed envelope.

    Only one case is safe: ``UNAVAILABLE`` with ErrorInfo metadata ``request_released:
    "true"`` -- the gateway refused before anything was disclosed (the upstream was down)
    and gave the request id back. Anything else is not resent: after any other
    ``UNAVAILABLE`` (audit log, database, maintenance) the id may still be claimed and a
    resend would be refused as a replay; ``ALREADY_EXISTS`` means the query was received
    before (its ``receipt``, when the gateway found one, proves the first answer); a
    deadline or a broken connection leaves unknown whether the query was answered.
    """
    return (error.code == grpc.StatusCode.UNAVAILABLE
            and error.metadata.get("request_released") == "true")


def send_query(
    client: ClientCore, prepared: c.PreparedQuery, *, retries: int = QUERY_RETRIES
) -> Plan[c.QueryOutcome]:
    """Send a signed query and verify the gateway's signed answer against it.

    A refusal that :func:`may_resend` allows is resent (the same envelope, so the same
    request id) up to ``retries`` times after a growing pause; every other refusal is
    raised at once as :class:`~clients.errors.ClientError`. A resend must still pass the
    gateway's freshness check (``created_at`` within its clock skew): after that, build
    and sign the query again (a new request id).
    """
    pause = QUERY_RETRY_PAUSE
    for attempt in range(retries + 1):
        try:
            response = yield Call(QUERY, prepared.request())
        except ClientError as exc:
            if attempt >= retries or not may_resend(exc):
                raise
            yield Pause(pause)
            pause *= 2
            continue
        return c.verify_result(response, prepared, client._verifier)
    raise AssertionError("unreachable")  # pragma: no cover


def query(
    client: ClientCore,
    resource: int,
    parameters: Mapping[str, str],
    basis: str,
    task_ref: str,
    justification: str,
    signer: Signer | None,
) -> Plan[c.QueryOutcome]:
    prepared = yield from prepare_query(
        client, resource, parameters, basis, task_ref, justification, signer
    )
    return (yield from send_query(client, prepared))


def service_status(client: ClientCore) -> Plan[c.ServiceStatusInfo]:
    status: c.ServiceStatusInfo = yield Call(
        GET_SERVICE_STATUS, query_pb2.GetServiceStatusRequest()
    )
    return status


def checkpoint(client: ClientCore) -> Plan[c.CheckpointInfo]:
    cp: c.CheckpointInfo = yield Call(GET_CHECKPOINT, audit_pb2.GetCheckpointRequest())
    return cp


def inclusion_proof(client: ClientCore, seq: int, tree_size: int) -> Plan[c.InclusionProofInfo]:
    proof: c.InclusionProofInfo = yield Call(
        GET_INCLUSION_PROOF, audit_pb2.GetInclusionProofRequest(seq=seq, tree_size=tree_size)
    )
    return proof


def consistency_proof(
    client: ClientCore, first: int, second: int
) -> Plan[c.ConsistencyProofInfo]:
    proof: c.ConsistencyProofInfo = yield Call(
        GET_CONSISTENCY_PROOF, audit_pb2.GetConsistencyProofRequest(first=first, second=second)
    )
    return proof


def prove_receipt(client: ClientCore, receipt: c.Receipt) -> Plan[int]:
    """The latest checkpoint and the receipt's inclusion proof, verified offline: the
    checkpoint under the audit key the pinned gateway key endorses
    (:func:`clients._common.verify_receipt`); the tree size."""
    cp = yield from checkpoint(client)
    proof = yield from inclusion_proof(client, receipt.seq, cp.tree_size)
    return c.verify_receipt(receipt, proof, cp, client._verifier.public_keys)


def admin(
    client: ClientCore, command: ProtoMessage, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    """Sign and execute one admin command."""
    wrapped = c.admin_command(command)
    request: admin_pb2.AdminRequest = yield TokenWork(
        functools.partial(c.sign_admin, wrapped, client._signer(signer))
    )
    outcome: c.AdminOutcome = yield Call(EXECUTE, request)
    return outcome
