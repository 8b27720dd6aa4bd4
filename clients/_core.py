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
from clients import _reports as r
from clients import fm1 as fm1_lib
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientError, ClientUsageError
from signing import documents
from signing.api import Signer
from signing.wire import bearer_metadata
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    query_pb2,
    query_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    screening_pb2_grpc,
)

T = TypeVar("T")


# --- what one gateway method is ---------------------------------------------------------
class Service(enum.Enum):
    """The gateway's gRPC services (see :data:`STUBS` for the stub class of each)."""

    AUTH = "siogw.v1.AuthService"
    QUERY = "siogw.v1.QueryService"
    AUDIT = "siogw.v1.AuditService"
    ADMIN = "siogw.v1.AdminService"
    REPORTING = "siogw.v1.ReportingService"
    SCREENING = "siogw.v1.ScreeningService"  # the List and the Lists (clients/_lists.py)


STUBS: dict[Service, Callable[[Any], Any]] = {
    Service.AUTH: auth_pb2_grpc.AuthServiceStub,
    Service.QUERY: query_pb2_grpc.QueryServiceStub,
    Service.AUDIT: audit_pb2_grpc.AuditServiceStub,
    Service.ADMIN: admin_pb2_grpc.AdminServiceStub,
    Service.REPORTING: reporting_pb2_grpc.ReportingServiceStub,
    Service.SCREENING: screening_pb2_grpc.ScreeningServiceStub,
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
EXECUTE: Rpc[c.AdminOutcome] = Rpc(Service.ADMIN, "Execute", Session.REQUIRED, c.admin_outcome)
# The applicant's side (no session: the applicant proves the application's certificate).
FILE_APPLICATION: Rpc[admin_pb2.ApplicationStatus] = Rpc(
    Service.ADMIN, "FileApplication", Session.NONE, _same
)
GET_APPLICATION_STATUS: Rpc[admin_pb2.ApplicationStatus] = Rpc(
    Service.ADMIN, "GetApplicationStatus", Session.NONE, _same
)
GET_REFUSAL: Rpc[c.RefusalDocument] = Rpc(
    Service.ADMIN, "GetRefusal", Session.NONE, c.refusal_from_proto
)
GET_JOURNAL: Rpc[admin_pb2.Journal] = Rpc(Service.ADMIN, "GetJournal", Session.REQUIRED, _same)


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


@dataclass(frozen=True)
class Stream(Generic[T]):
    """Perform the server-streaming ``rpc`` with ``request``, handing each message, as
    ``rpc.parse(message)``, to ``take`` as it arrives (a refusal before or between
    messages is thrown into the plan); the plan receives None."""

    rpc: Rpc[T]
    request: ProtoMessage
    take: Callable[[T], None]

    def give(self, message: Any) -> None:
        self.take(self.rpc.parse(message))


Step = Call[Any] | TokenWork | AskCaller | Pause | Stream[Any]
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

    def _bind(
        self, call: Call[Any] | Stream[Any]
    ) -> tuple[Callable[..., Any], list[tuple[str, str]]]:
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


# --- administration by command (issue 15): one plan per AdminService command ------------
# Each signs one AdminCommand on the caller's token (the session's signer unless
# ``signer`` is given) and returns the AdminOutcome with its typed ``result``.
def enroll_user(
    client: ClientCore, user_id: str, full_name: str, role: str, *, unit: str, post: str,
    phone: str, certificate: x509.Certificate | bytes | None,
    device_public_key_der: bytes | None, signer: Signer | None, provider_bin: str = "",
) -> Plan[c.AdminOutcome]:
    der = b"" if certificate is None else (
        certificate if isinstance(certificate, bytes) else c.certificate_der_of(certificate))
    return (yield from admin(client, admin_pb2.EnrollUser(
        user_id=user_id, full_name=full_name, role=role, unit=unit, post=post, phone=phone,
        certificate_der=der, device_public_key_der=device_public_key_der or b"",
        provider_bin=provider_bin), signer))


def block_user(
    client: ClientCore, user_id: str, reason: str, kind: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.BlockUser(
        user_id=user_id, reason=reason, kind=kind), signer))


def unblock_user(
    client: ClientCore, user_id: str, reason: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.UnblockUser(user_id=user_id, reason=reason),
                             signer))


def list_users(client: ClientCore, role: str, signer: Signer | None) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListUsers(role=role), signer))


def show_user(client: ClientCore, user_id: str, signer: Signer | None) -> Plan[c.AdminOutcome]:
    """One user (``result`` a ``UserEntry``), read through the ListUsers command."""
    listed = yield from list_users(client, "", signer)
    found = [u for u in getattr(listed.result, "users", ()) if u.user_id == user_id]
    if not found:
        raise ClientUsageError(f"no user {user_id!r} is enrolled")
    return c.AdminOutcome(message=f"user {user_id}", receipt=listed.receipt, result=found[0])


def register_certificate(
    client: ClientCore, user_id: str, certificate: x509.Certificate | bytes, token_label: str,
    signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    der = certificate if isinstance(certificate, bytes) else c.certificate_der_of(certificate)
    return (yield from admin(client, admin_pb2.RegisterCertificate(
        user_id=user_id, certificate_der=der, token_label=token_label), signer))


def revoke_certificate(
    client: ClientCore, serial_hex: str, fingerprint: str, reason: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    if not serial_hex and not fingerprint:
        raise ClientUsageError("name the certificate by serial_hex or fingerprint")
    return (yield from admin(client, admin_pb2.RevokeCertificate(
        serial_hex=serial_hex, fingerprint=fingerprint, reason=reason), signer))


def import_crl(client: ClientCore, crl: bytes, signer: Signer | None) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ImportCrl(crl=crl), signer))


def list_certificates(
    client: ClientCore, user_id: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListCertificates(user_id=user_id), signer))


def publish_maintenance(
    client: ClientCore, starts_at: _dt.datetime | str, ends_at: _dt.datetime | str,
    description: str, window_id: str, signer: Signer | None, urgent: bool = False,
) -> Plan[c.AdminOutcome]:
    window = common_pb2.MaintenanceWindow(
        id=window_id, starts_at=c.iso_time(starts_at), ends_at=c.iso_time(ends_at),
        description=description, urgent=urgent)
    return (yield from admin(client, admin_pb2.PublishMaintenance(window=window), signer))


def cancel_maintenance(
    client: ClientCore, window_id: str, reason: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.CancelMaintenance(
        window_id=window_id, reason=reason), signer))


def get_journal(client: ClientCore) -> Plan[admin_pb2.Journal]:
    """The published maintenance windows and the Journal of emergencies (any user)."""
    journal: admin_pb2.Journal = yield Call(GET_JOURNAL, admin_pb2.GetJournalRequest())
    return journal


def list_maintenance(client: ClientCore) -> Plan[list[common_pb2.MaintenanceWindow]]:
    """The maintenance windows not ended and not cancelled (from the journal)."""
    journal = yield from get_journal(client)
    return list(journal.windows)


def record_emergency(
    client: ClientCore, onset_at: _dt.datetime | str, causes: str, measures: str,
    resolved_at: _dt.datetime | str | None, signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.RecordEmergency(
        onset_at=c.iso_time(onset_at), causes=causes, measures=measures,
        resolved_at=c.iso_time(resolved_at)), signer))


def resolve_emergency(
    client: ClientCore, emergency_id: str, resolved_at: _dt.datetime | str | None,
    measures: str, signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ResolveEmergency(
        emergency_id=emergency_id, resolved_at=c.iso_time(resolved_at), measures=measures),
        signer))


def list_emergencies(
    client: ClientCore, open_only: bool, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListEmergencies(open_only=open_only), signer))


def file_application(
    client: ClientCore, signer: Signer, *, iin: str, full_name: str, phone: str,
    requested_role: str, basis: str, unit: str, post: str, corrects: str | None,
) -> Plan[admin_pb2.ApplicationStatus]:
    """Sign an application on the applicant's token (its certificate goes in it) and file
    it; needs no session."""
    if signer.certificate is None:
        raise ClientUsageError("the applicant's signer needs its certificate (--cert)")
    doc = documents.application_document(
        iin=iin, full_name=full_name, phone=phone,
        certificate_der=c.certificate_der_of(signer.certificate),
        requested_role=requested_role, basis=basis, unit=unit, post=post, corrects=corrects)
    signed: bytes = yield TokenWork(functools.partial(
        documents.sign_document, documents.PAYLOAD_APPLICATION, doc, signer))
    status: admin_pb2.ApplicationStatus = yield Call(
        FILE_APPLICATION, admin_pb2.FileApplicationRequest(document=signed))
    return status


def application_status(
    client: ClientCore, application_id: str, signer: Signer
) -> Plan[admin_pb2.ApplicationStatus]:
    """The applicant's view of an application (signed with the application's key)."""
    proof = yield TokenWork(functools.partial(c.sign_applicant_proof, application_id, signer))
    status: admin_pb2.ApplicationStatus = yield Call(GET_APPLICATION_STATUS, proof)
    return status


def application_refusal(
    client: ClientCore, application_id: str, signer: Signer
) -> Plan[c.RefusalDocument]:
    """The refusal of an application, as the operator signed it."""
    proof = yield TokenWork(functools.partial(c.sign_applicant_proof, application_id, signer))
    refusal: c.RefusalDocument = yield Call(GET_REFUSAL, proof)
    return refusal


def list_applications(
    client: ClientCore, status: str, overdue_only: bool, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListApplications(
        status=status, overdue_only=overdue_only), signer))


def register_application(
    client: ClientCore, application_id: str, user_id: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.RegisterApplication(
        application_id=application_id, user_id=user_id), signer))


def refuse_application(
    client: ClientCore, application_id: str, reason: str, iin: str | None,
    signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    """Sign a refusal on the operator's token and send it. Without ``iin``, the pending
    application is looked up first (ListApplications) for the applicant's IIN."""
    chosen = client._signer(signer)
    if not client.user_id:
        raise ClientUsageError("not logged in: call login() first")
    if iin is None:
        pending = yield from list_applications(client, "pending", False, signer)
        found = [a for a in getattr(pending.result, "applications", ())
                 if a.id == application_id]
        if not found:
            raise ClientUsageError(f"no pending application {application_id!r}")
        iin = found[0].iin
    doc = documents.refusal_document(application_id, iin, reason, client.user_id, now_utc())
    signed: bytes = yield TokenWork(functools.partial(
        documents.sign_document, documents.PAYLOAD_REFUSAL, doc, chosen))
    return (yield from admin(client, admin_pb2.RefuseApplication(document=signed), signer))


def file_transfer(
    client: ClientCore, unit: str, post: str, order_number: str,
    order_signed_at: _dt.datetime, user_id: str | None, signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    """A transfer edit signed by the user it moves (the caller unless ``user_id``)."""
    chosen = client._signer(signer)
    who = user_id or client.user_id
    if not who:
        raise ClientUsageError("not logged in: call login() first")
    doc = documents.transfer_document(who, unit, post, order_number, order_signed_at)
    signed: bytes = yield TokenWork(functools.partial(
        documents.sign_document, documents.PAYLOAD_TRANSFER, doc, chosen))
    return (yield from admin(client, admin_pb2.FileTransfer(document=signed), signer))


def list_transfers(
    client: ClientCore, late_only: bool, pending_only: bool, signer: Signer | None,
    overdue_only: bool = False,
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListTransfers(
        late_only=late_only, pending_only=pending_only, overdue_only=overdue_only), signer))


def apply_transfer(
    client: ClientCore, transfer_id: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ApplyTransfer(transfer_id=transfer_id), signer))


def list_alerts(
    client: ClientCore, open_only: bool, user_id: str, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListAlerts(
        open_only=open_only, user_id=user_id), signer))


def ack_alert(client: ClientCore, alert_id: int, signer: Signer | None) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.AcknowledgeAlert(alert_id=alert_id), signer))


def read_outbox(
    client: ClientCore, include_read: bool, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ReadOutbox(include_read=include_read), signer))


def mark_notice_read(
    client: ClientCore, notification_id: int, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.MarkNoticeRead(
        notification_id=notification_id), signer))


def record_review(
    client: ClientCore, period_start: _dt.datetime | str, period_end: _dt.datetime | str,
    note: str, signer: Signer | None,
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.RecordReview(
        period_start=c.iso_time(period_start), period_end=c.iso_time(period_end), note=note),
        signer))


def list_overdue_reviews(
    client: ClientCore, all_controllers: bool, signer: Signer | None
) -> Plan[c.AdminOutcome]:
    return (yield from admin(client, admin_pb2.ListOverdueReviews(all=all_controllers), signer))
# --- Reports (§21) and the prosecutor's supervision (§22), issue 15 ----------------------
LIST_QUERIES: Rpc[audit_pb2.QueryPage] = Rpc(Service.AUDIT, "ListQueries", Session.REQUIRED, _same)
EXPORT_QUERIES_CSV: Rpc[audit_pb2.CsvExport] = Rpc(
    Service.AUDIT, "ExportQueriesCsv", Session.REQUIRED, _same
)
STREAM_QUERIES_CSV: Rpc[audit_pb2.CsvChunk] = Rpc(
    Service.AUDIT, "StreamQueriesCsv", Session.REQUIRED, _same
)
REGISTER_RESOLUTION: Rpc[r.Resolution] = Rpc(
    Service.AUDIT, "RegisterResolution", Session.REQUIRED, r.resolution_from_proto
)
READ_AUDIT_TRAIL: Rpc[audit_pb2.QueryPage] = Rpc(
    Service.AUDIT, "ReadAuditTrail", Session.REQUIRED, _same
)


def _rows(
    client: ClientCore, rpc: Rpc[audit_pb2.QueryPage], request: Any, prove: bool
) -> Plan[r.QueryRowPage]:
    """One page of rows; with ``prove``, the latest checkpoint first, the rows' proofs
    into its tree, each checked (:func:`clients._reports.proved_page`)."""
    if not prove:
        page: audit_pb2.QueryPage = yield Call(rpc, request)
        return r.page_from_proto(page)
    cp = yield from checkpoint(client)
    request.prove = True
    request.tree_size = cp.tree_size
    page = yield Call(rpc, request)
    return r.proved_page(page, cp, client._verifier.public_keys)


def _after(after_seq: int | None) -> dict[str, Any]:
    return {} if after_seq is None else {"after_seq": after_seq, "has_after_seq": True}


def list_queries(
    client: ClientCore, flt: r.ReportFilter | None, *, after_seq: int | None, limit: int,
    prove: bool,
) -> Plan[r.QueryRowPage]:
    """One page of Reports rows (controllers, §21)."""
    request = audit_pb2.ListQueriesRequest(
        filter=(flt or r.ReportFilter()).to_proto(), limit=limit, **_after(after_seq))
    return (yield from _rows(client, LIST_QUERIES, request, prove))


def export_queries_csv(
    client: ClientCore, out: Any, flt: r.ReportFilter | None, *, chunk_rows: int
) -> Plan[r.CsvExportInfo]:
    """Stream the export into the file object ``out``; complete or an error (a stream
    that ends before the gateway's last chunk raises ``ResultVerificationError``)."""
    sink = r.CsvSink(out)
    yield Stream(STREAM_QUERIES_CSV, audit_pb2.ListQueriesRequest(
        filter=(flt or r.ReportFilter()).to_proto(), limit=chunk_rows), sink)
    return sink.result()


def export_queries_csv_page(
    client: ClientCore, flt: r.ReportFilter | None, *, after_seq: int | None, limit: int,
) -> Plan[audit_pb2.CsvExport]:
    """One page of the Reports export as CSV bytes (``ExportQueriesCsv``; the streamed
    :func:`export_queries_csv` is the one for whole exports)."""
    page: audit_pb2.CsvExport = yield Call(EXPORT_QUERIES_CSV, audit_pb2.ListQueriesRequest(
        filter=(flt or r.ReportFilter()).to_proto(), limit=limit, **_after(after_seq)))
    return page


def register_resolution(
    client: ClientCore, number: str, date: str, user_ids: list[str], period_start: str,
    period_end: str, signer: Signer | None,
) -> Plan[r.Resolution]:
    """Sign the resolution on the prosecutor's token and register it (§22)."""
    document = yield TokenWork(functools.partial(
        r.sign_resolution, number, date, user_ids, period_start, period_end,
        client._signer(signer)))
    res: r.Resolution = yield Call(
        REGISTER_RESOLUTION, audit_pb2.RegisterResolutionRequest(document=document))
    return res


def read_audit_trail(
    client: ClientCore, resolution_id: str, *, user_ids: list[str] | None, since: str,
    until: str, flt: r.ReportFilter | None, after_seq: int | None, limit: int, prove: bool,
) -> Plan[r.QueryRowPage]:
    """One page of the trail within a resolution's scope (the prosecutor, §22)."""
    request = audit_pb2.ReadAuditTrailRequest(
        resolution_id=resolution_id, user_ids=list(user_ids or ()), since=since, until=until,
        limit=limit, filter=(flt or r.ReportFilter()).to_proto(), **_after(after_seq))
    return (yield from _rows(client, READ_AUDIT_TRAIL, request, prove))

# --- FM-1 reporting (issue 16) ----------------------------------------------------------
FM1_SUBMIT: Rpc[reporting_pb2.Fm1Receipt] = Rpc(
    Service.REPORTING, "Submit", Session.REQUIRED, _same)
FM1_STATUS: Rpc[reporting_pb2.Fm1Status] = Rpc(
    Service.REPORTING, "GetStatus", Session.REQUIRED, _same)
FM1_LIST: Rpc[reporting_pb2.Fm1Page] = Rpc(
    Service.REPORTING, "ListMessages", Session.REQUIRED, _same)
FM1_SHOW: Rpc[reporting_pb2.Fm1Message] = Rpc(
    Service.REPORTING, "GetMessage", Session.REQUIRED, _same)
FM1_EXPORT: Rpc[audit_pb2.CsvExport] = Rpc(
    Service.REPORTING, "ExportMessagesCsv", Session.REQUIRED, _same)


@dataclass(frozen=True)
class Fm1Submitted:
    """An accepted FM-1 message: the gateway's answer and what was verified of it."""

    response: reporting_pb2.Fm1Receipt
    verified: fm1_lib.Fm1ReceiptInfo


def fm1_submit(
    client: ClientCore, message: Mapping[str, Any], signer: Signer | None
) -> Plan[Fm1Submitted]:
    """Sign an FM-1 message on the token, submit it, and verify the receipt offline
    (:func:`clients.fm1.verify_fm1_receipt`: the acknowledgement by the pinned gateway
    key, the checkpoint by the audit key it endorses, the inclusion proof)."""
    request = yield TokenWork(functools.partial(fm1_lib.sign_fm1, message,
                                                client._signer(signer)))
    response = yield Call(FM1_SUBMIT, request)
    return Fm1Submitted(response, fm1_lib.verify_fm1_receipt(response, client._verifier,
                                                             sent=request))


def fm1_status(client: ClientCore, message_id: str, provider_bin: str = ""
               ) -> Plan[reporting_pb2.Fm1Status]:
    status = yield Call(FM1_STATUS, reporting_pb2.Fm1Ref(message_id=message_id,
                                                         provider_bin=provider_bin))
    return status  # type: ignore[no-any-return]


def fm1_list(client: ClientCore, request: reporting_pb2.ListFm1Request
             ) -> Plan[reporting_pb2.Fm1Page]:
    page = yield Call(FM1_LIST, request)
    return page  # type: ignore[no-any-return]


def fm1_show(client: ClientCore, message_id: str, provider_bin: str = ""
             ) -> Plan[reporting_pb2.Fm1Message]:
    message = yield Call(FM1_SHOW, reporting_pb2.Fm1Ref(message_id=message_id,
                                                        provider_bin=provider_bin))
    return message  # type: ignore[no-any-return]


def fm1_export(client: ClientCore, request: reporting_pb2.ListFm1Request
               ) -> Plan[audit_pb2.CsvExport]:
    export = yield Call(FM1_EXPORT, request)
    return export  # type: ignore[no-any-return]
