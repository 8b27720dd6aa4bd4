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
from typing import IO, Any, TypeVar

import grpc
import grpc.aio
from cryptography import x509
from google.protobuf.message import Message as ProtoMessage

from clients import _common as c
from clients import _core as core
from clients import _lists
from clients._reports import CsvExportInfo, QueryRowPage, ReportFilter, Resolution
from clients.biometric import SoftwareDeviceKey
from clients.errors import ClientError
from signing.api import Signer
from siogw_api.v1 import admin_pb2, audit_pb2, common_pb2, screening_pb2

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
        if isinstance(step, core.Stream):
            method, metadata = self._bind(step)
            try:
                async for message in method(step.request, metadata=metadata,
                                            timeout=self.timeout):
                    step.give(message)
            except grpc.RpcError as exc:
                raise c.client_error(step.rpc.method, exc) from None
            return None
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

    # -- administration by command (issue 15) ----------------------------------------------
    async def enroll_user(
        self,
        user_id: str,
        full_name: str,
        role: str,
        *,
        unit: str = "",
        post: str = "",
        phone: str = "",
        certificate: x509.Certificate | bytes | None = None,
        device_public_key_der: bytes | None = None,
        signer: Signer | None = None,
        provider_bin: str = "",
    ) -> c.AdminOutcome:
        """Enrol a user (operator); ``result``: the ``UserEntry``. ``provider_bin``: the
        provider's BIN, required for (and only for) a ``compliance_officer``."""
        return await self._run(
            core.enroll_user(
                self,
                user_id,
                full_name,
                role,
                unit=unit,
                post=post,
                phone=phone,
                certificate=certificate,
                device_public_key_der=device_public_key_der,
                signer=signer,
                provider_bin=provider_bin,
            )
        )

    async def block_user(
        self,
        user_id: str,
        reason: str,
        *,
        kind: str = "suspension",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Block a user (dismissal | suspension | violation); live sessions end at once."""
        return await self._run(core.block_user(self, user_id, reason, kind, signer))

    async def unblock_user(
        self,
        user_id: str,
        reason: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Unblock a user."""
        return await self._run(core.unblock_user(self, user_id, reason, signer))

    async def list_users(self, *, role: str = "", signer: Signer | None = None) -> c.AdminOutcome:
        """Every enrolled user (``result``: ``UserList``), or those of one role."""
        return await self._run(core.list_users(self, role, signer))

    async def show_user(self, user_id: str, *, signer: Signer | None = None) -> c.AdminOutcome:
        """One user (``result``: ``UserEntry``)."""
        return await self._run(core.show_user(self, user_id, signer))

    async def register_certificate(
        self,
        user_id: str,
        certificate: x509.Certificate | bytes,
        *,
        token_label: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Register a (rotated) certificate to a user (``result``: ``CertificateEntry``)."""
        return await self._run(
            core.register_certificate(
                self,
                user_id,
                certificate,
                token_label,
                signer,
            )
        )

    async def revoke_certificate(
        self,
        *,
        serial_hex: str = "",
        fingerprint: str = "",
        reason: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Revoke a certificate by serial or fingerprint; its sessions end at once."""
        return await self._run(
            core.revoke_certificate(
                self,
                serial_hex,
                fingerprint,
                reason,
                signer,
            )
        )

    async def import_crl(self, crl: bytes, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Import a CRL (PEM or DER); ``result``: ``CrlImportResult``."""
        return await self._run(core.import_crl(self, crl, signer))

    async def list_certificates(
        self,
        *,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Registered certificates with expiry and warnings (``result``: ``CertificateList``)."""
        return await self._run(core.list_certificates(self, user_id, signer))

    async def publish_maintenance(
        self,
        starts_at: _dt.datetime | str,
        ends_at: _dt.datetime | str,
        description: str,
        *,
        window_id: str = "",
        urgent: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Publish a maintenance window (``result``: ``MaintenanceEntry``); ``urgent``: one
        that cannot wait the notice period (``limits.maintenance_notice_hours``, §14)."""
        return await self._run(
            core.publish_maintenance(
                self,
                starts_at,
                ends_at,
                description,
                window_id,
                signer,
                urgent,
            )
        )

    async def cancel_maintenance(
        self,
        window_id: str,
        reason: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Cancel a published window that has not ended."""
        return await self._run(core.cancel_maintenance(self, window_id, reason, signer))

    async def list_maintenance(self) -> list[common_pb2.MaintenanceWindow]:
        """The maintenance windows not ended and not cancelled."""
        return await self._run(core.list_maintenance(self))

    async def get_journal(self) -> admin_pb2.Journal:
        """The maintenance windows and the Journal of emergencies (any signed-in user)."""
        return await self._run(core.get_journal(self))

    async def record_emergency(
        self,
        onset_at: _dt.datetime | str,
        causes: str,
        measures: str,
        *,
        resolved_at: _dt.datetime | str | None = None,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Record an emergency in the Journal (``result``: ``Emergency``)."""
        return await self._run(
            core.record_emergency(
                self,
                onset_at,
                causes,
                measures,
                resolved_at,
                signer,
            )
        )

    async def resolve_emergency(
        self,
        emergency_id: str,
        *,
        resolved_at: _dt.datetime | str | None = None,
        measures: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Mark an emergency resolved (now unless ``resolved_at``)."""
        return await self._run(
            core.resolve_emergency(
                self,
                emergency_id,
                resolved_at,
                measures,
                signer,
            )
        )

    async def list_emergencies(
        self,
        *,
        open_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """The Journal of emergencies (``result``: ``EmergencyList``)."""
        return await self._run(core.list_emergencies(self, open_only, signer))

    async def file_application(
        self,
        signer: Signer,
        *,
        iin: str,
        full_name: str,
        phone: str,
        requested_role: str = "agency_user",
        basis: str = "",
        unit: str = "",
        post: str = "",
        corrects: str | None = None,
    ) -> admin_pb2.ApplicationStatus:
        """File an application for access, signed on the applicant's token (no session)."""
        return await self._run(
            core.file_application(
                self,
                signer,
                iin=iin,
                full_name=full_name,
                phone=phone,
                requested_role=requested_role,
                basis=basis,
                unit=unit,
                post=post,
                corrects=corrects,
            )
        )

    async def application_status(
        self,
        application_id: str,
        signer: Signer,
    ) -> admin_pb2.ApplicationStatus:
        """The applicant's view of an application (signed with the application's key)."""
        return await self._run(core.application_status(self, application_id, signer))

    async def application_refusal(self, application_id: str, signer: Signer) -> c.RefusalDocument:
        """The refusal of an application as the operator signed it."""
        return await self._run(core.application_refusal(self, application_id, signer))

    async def list_applications(
        self,
        *,
        status: str = "",
        overdue_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Applications (``result``: ``ApplicationList``)."""
        return await self._run(core.list_applications(self, status, overdue_only, signer))

    async def register_application(
        self,
        application_id: str,
        *,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Register an application: the applicant becomes a user (``result``: ``EnrolmentInfo``)."""
        return await self._run(core.register_application(self, application_id, user_id, signer))

    async def refuse_application(
        self,
        application_id: str,
        reason: str,
        *,
        iin: str | None = None,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Refuse an application with a refusal signed on the operator's token."""
        return await self._run(core.refuse_application(self, application_id, reason, iin, signer))

    async def file_transfer(
        self,
        unit: str,
        post: str,
        order_number: str,
        order_signed_at: _dt.datetime,
        *,
        user_id: str | None = None,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """File a transfer edit signed on the user's token (``result``: ``TransferEntry``)."""
        return await self._run(
            core.file_transfer(
                self,
                unit,
                post,
                order_number,
                order_signed_at,
                user_id,
                signer,
            )
        )

    async def list_transfers(
        self,
        *,
        late_only: bool = False,
        pending_only: bool = False,
        overdue_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Transfer edits (``result``: ``TransferList``)."""
        return await self._run(
            core.list_transfers(self, late_only, pending_only, signer, overdue_only)
        )

    async def apply_transfer(
        self,
        transfer_id: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Apply a transfer edit to the user's record."""
        return await self._run(core.apply_transfer(self, transfer_id, signer))

    async def list_alerts(
        self,
        *,
        open_only: bool = False,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Violation alerts (``result``: ``AlertList``)."""
        return await self._run(core.list_alerts(self, open_only, user_id, signer))

    async def ack_alert(self, alert_id: int, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Acknowledge an alert."""
        return await self._run(core.ack_alert(self, alert_id, signer))

    async def read_outbox(
        self,
        *,
        include_read: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """The notices to the agency (``result``: ``OutboxList``)."""
        return await self._run(core.read_outbox(self, include_read, signer))

    async def mark_notice_read(
        self,
        notification_id: int,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Mark a notice read."""
        return await self._run(core.mark_notice_read(self, notification_id, signer))

    async def record_review(
        self,
        period_start: _dt.datetime | str,
        period_end: _dt.datetime | str,
        note: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Record the controller's review of a period (``result``: ``ReviewEntry``)."""
        return await self._run(core.record_review(self, period_start, period_end, note, signer))

    async def list_overdue_reviews(
        self,
        *,
        all_controllers: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Controllers whose monthly review is overdue (``result``: ``ReviewStatusList``)."""
        return await self._run(core.list_overdue_reviews(self, all_controllers, signer))
    # -- Reports (§21) and the prosecutor's supervision (§22) ---------------------------------
    async def list_queries(
        self, flt: ReportFilter | None = None, *, after_seq: int | None = None,
        limit: int = 100, prove: bool = False,
    ) -> QueryRowPage:
        """One page of Reports rows (controllers). With ``prove``, each row's inclusion
        proof is checked against the latest checkpoint (``row.proved``)."""
        return await self._run(core.list_queries(self, flt, after_seq=after_seq, limit=limit,
                                                 prove=prove))

    async def export_queries_csv(
        self, out: IO[Any], flt: ReportFilter | None = None, *, chunk_rows: int = 0
    ) -> CsvExportInfo:
        """Stream the Reports export (CSV, formula-safe cells) into the file object
        ``out``; raises if the stream ends early (then ``out`` holds a partial CSV)."""
        return await self._run(core.export_queries_csv(self, out, flt, chunk_rows=chunk_rows))

    async def export_queries_csv_page(
        self, flt: ReportFilter | None = None, *, after_seq: int | None = None,
        limit: int = 100,
    ) -> audit_pb2.CsvExport:
        """One page of the Reports export as CSV bytes, with ``has_more`` and
        ``next_after_seq`` for the next page."""
        return await self._run(
            core.export_queries_csv_page(self, flt, after_seq=after_seq, limit=limit)
        )

    async def register_resolution(
        self, number: str, date: str, user_ids: list[str], period_start: str,
        period_end: str, *, signer: Signer | None = None,
    ) -> Resolution:
        """Sign a resolution on the prosecutor's token and register it."""
        return await self._run(core.register_resolution(
            self, number, date, user_ids, period_start, period_end, signer))

    async def read_audit_trail(
        self, resolution_id: str, *, user_ids: list[str] | None = None, since: str = "",
        until: str = "", flt: ReportFilter | None = None, after_seq: int | None = None,
        limit: int = 100, prove: bool = False,
    ) -> QueryRowPage:
        """One page of the audit trail within the resolution's scope (the prosecutor)."""
        return await self._run(core.read_audit_trail(
            self, resolution_id, user_ids=user_ids, since=since, until=until, flt=flt,
            after_seq=after_seq, limit=limit, prove=prove))

    # -- FM-1 reporting (issue 16) --------------------------------------------------------
    async def fm1_submit(self, message: Mapping[str, Any], *, signer: Signer | None = None
                   ) -> core.Fm1Submitted:
        """Sign an FM-1 message (a JSON object) on the token, submit it, and verify the
        gateway's receipt offline (:func:`clients.fm1.verify_fm1_receipt`)."""
        return await self._run(core.fm1_submit(self, message, signer))

    async def fm1_status(self, message_id: str, provider_bin: str = "") -> Any:
        return await self._run(core.fm1_status(self, message_id, provider_bin))

    async def fm1_list(self, request: Any) -> Any:
        return await self._run(core.fm1_list(self, request))

    async def fm1_show(self, message_id: str, provider_bin: str = "") -> Any:
        return await self._run(core.fm1_show(self, message_id, provider_bin))

    async def fm1_export(self, request: Any) -> Any:
        return await self._run(core.fm1_export(self, request))
    # -- the List and the Lists (issue 16, point 6; clients/_lists.py) ----------------------
    async def publish_list(self, list_name: str, content: bytes, fmt: str, *,
                           source_reference: str = "", signer: Signer | None = None
                           ) -> screening_pb2.PublishListResponse:
        return await self._run(_lists.publish_list(self, list_name, content, fmt,
                                                   source_reference, signer))

    async def lists(self) -> screening_pb2.ListsOverview:
        return await self._run(_lists.lists(self))

    async def screen(self, *, iin_bin: str = "", name: str = "", birth_date: str = "",
                     client_ref: str = "") -> screening_pb2.ScreeningResult:
        return await self._run(_lists.screen(self, iin_bin, name, birth_date, client_ref))

    async def watch(self, client_ref: str, *, iin_bin: str = "", name: str = "",
                    birth_date: str = "") -> screening_pb2.ScreeningResult:
        return await self._run(_lists.watch(self, client_ref, iin_bin, name, birth_date))

    async def screening_outbox(self, *, include_read: bool = False
                               ) -> screening_pb2.ScreeningOutbox:
        return await self._run(_lists.read_outbox(self, include_read))

