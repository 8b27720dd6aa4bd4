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
from typing import IO, Any, TypeVar

import grpc
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
        if isinstance(step, core.Stream):
            method, metadata = self._bind(step)
            try:
                for message in method(step.request, metadata=metadata, timeout=self.timeout):
                    step.give(message)
            except grpc.RpcError as exc:
                raise c.client_error(step.rpc.method, exc) from None
            return None
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

    # -- administration by command (issue 15) ----------------------------------------------
    def enroll_user(
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
        return self._run(
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

    def block_user(
        self,
        user_id: str,
        reason: str,
        *,
        kind: str = "suspension",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Block a user (dismissal | suspension | violation); live sessions end at once."""
        return self._run(core.block_user(self, user_id, reason, kind, signer))

    def unblock_user(
        self,
        user_id: str,
        reason: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Unblock a user."""
        return self._run(core.unblock_user(self, user_id, reason, signer))

    def list_users(self, *, role: str = "", signer: Signer | None = None) -> c.AdminOutcome:
        """Every enrolled user (``result``: ``UserList``), or those of one role."""
        return self._run(core.list_users(self, role, signer))

    def show_user(self, user_id: str, *, signer: Signer | None = None) -> c.AdminOutcome:
        """One user (``result``: ``UserEntry``)."""
        return self._run(core.show_user(self, user_id, signer))

    def register_certificate(
        self,
        user_id: str,
        certificate: x509.Certificate | bytes,
        *,
        token_label: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Register a (rotated) certificate to a user (``result``: ``CertificateEntry``)."""
        return self._run(core.register_certificate(self, user_id, certificate, token_label, signer))

    def revoke_certificate(
        self,
        *,
        serial_hex: str = "",
        fingerprint: str = "",
        reason: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Revoke a certificate by serial or fingerprint; its sessions end at once."""
        return self._run(core.revoke_certificate(self, serial_hex, fingerprint, reason, signer))

    def import_crl(self, crl: bytes, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Import a CRL (PEM or DER); ``result``: ``CrlImportResult``."""
        return self._run(core.import_crl(self, crl, signer))

    def list_certificates(
        self,
        *,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Registered certificates with expiry and warnings (``result``: ``CertificateList``)."""
        return self._run(core.list_certificates(self, user_id, signer))

    def publish_maintenance(
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
        return self._run(
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

    def cancel_maintenance(
        self,
        window_id: str,
        reason: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Cancel a published window that has not ended."""
        return self._run(core.cancel_maintenance(self, window_id, reason, signer))

    def list_maintenance(self) -> list[common_pb2.MaintenanceWindow]:
        """The maintenance windows not ended and not cancelled."""
        return self._run(core.list_maintenance(self))

    def get_journal(self) -> admin_pb2.Journal:
        """The maintenance windows and the Journal of emergencies (any signed-in user)."""
        return self._run(core.get_journal(self))

    def record_emergency(
        self,
        onset_at: _dt.datetime | str,
        causes: str,
        measures: str,
        *,
        resolved_at: _dt.datetime | str | None = None,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Record an emergency in the Journal (``result``: ``Emergency``)."""
        return self._run(
            core.record_emergency(
                self,
                onset_at,
                causes,
                measures,
                resolved_at,
                signer,
            )
        )

    def resolve_emergency(
        self,
        emergency_id: str,
        *,
        resolved_at: _dt.datetime | str | None = None,
        measures: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Mark an emergency resolved (now unless ``resolved_at``)."""
        return self._run(core.resolve_emergency(self, emergency_id, resolved_at, measures, signer))

    def list_emergencies(
        self,
        *,
        open_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """The Journal of emergencies (``result``: ``EmergencyList``)."""
        return self._run(core.list_emergencies(self, open_only, signer))

    def file_application(
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
        return self._run(
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

    def application_status(
        self,
        application_id: str,
        signer: Signer,
    ) -> admin_pb2.ApplicationStatus:
        """The applicant's view of an application (signed with the application's key)."""
        return self._run(core.application_status(self, application_id, signer))

    def application_refusal(self, application_id: str, signer: Signer) -> c.RefusalDocument:
        """The refusal of an application as the operator signed it."""
        return self._run(core.application_refusal(self, application_id, signer))

    def list_applications(
        self,
        *,
        status: str = "",
        overdue_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Applications (``result``: ``ApplicationList``)."""
        return self._run(core.list_applications(self, status, overdue_only, signer))

    def register_application(
        self,
        application_id: str,
        *,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Register an application: the applicant becomes a user (``result``: ``EnrolmentInfo``)."""
        return self._run(core.register_application(self, application_id, user_id, signer))

    def refuse_application(
        self,
        application_id: str,
        reason: str,
        *,
        iin: str | None = None,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Refuse an application with a refusal signed on the operator's token."""
        return self._run(core.refuse_application(self, application_id, reason, iin, signer))

    def file_transfer(
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
        return self._run(
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

    def list_transfers(
        self,
        *,
        late_only: bool = False,
        pending_only: bool = False,
        overdue_only: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Transfer edits (``result``: ``TransferList``)."""
        return self._run(
            core.list_transfers(self, late_only, pending_only, signer, overdue_only)
        )

    def apply_transfer(self, transfer_id: str, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Apply a transfer edit to the user's record."""
        return self._run(core.apply_transfer(self, transfer_id, signer))

    def list_alerts(
        self,
        *,
        open_only: bool = False,
        user_id: str = "",
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Violation alerts (``result``: ``AlertList``)."""
        return self._run(core.list_alerts(self, open_only, user_id, signer))

    def ack_alert(self, alert_id: int, *, signer: Signer | None = None) -> c.AdminOutcome:
        """Acknowledge an alert."""
        return self._run(core.ack_alert(self, alert_id, signer))

    def read_outbox(
        self,
        *,
        include_read: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """The notices to the agency (``result``: ``OutboxList``)."""
        return self._run(core.read_outbox(self, include_read, signer))

    def mark_notice_read(
        self,
        notification_id: int,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Mark a notice read."""
        return self._run(core.mark_notice_read(self, notification_id, signer))

    def record_review(
        self,
        period_start: _dt.datetime | str,
        period_end: _dt.datetime | str,
        note: str,
        *,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Record the controller's review of a period (``result``: ``ReviewEntry``)."""
        return self._run(core.record_review(self, period_start, period_end, note, signer))

    def list_overdue_reviews(
        self,
        *,
        all_controllers: bool = False,
        signer: Signer | None = None,
    ) -> c.AdminOutcome:
        """Controllers whose monthly review is overdue (``result``: ``ReviewStatusList``)."""
        return self._run(core.list_overdue_reviews(self, all_controllers, signer))
    # -- Reports (§21) and the prosecutor's supervision (§22) ---------------------------------
    def list_queries(
        self, flt: ReportFilter | None = None, *, after_seq: int | None = None,
        limit: int = 100, prove: bool = False,
    ) -> QueryRowPage:
        """One page of Reports rows (controllers). With ``prove``, each row's inclusion
        proof is checked against the latest checkpoint (``row.proved``)."""
        return self._run(core.list_queries(self, flt, after_seq=after_seq, limit=limit,
                                           prove=prove))

    def export_queries_csv(
        self, out: IO[Any], flt: ReportFilter | None = None, *, chunk_rows: int = 0
    ) -> CsvExportInfo:
        """Stream the Reports export (CSV, formula-safe cells) into the file object
        ``out``; raises if the stream ends early (then ``out`` holds a partial CSV)."""
        return self._run(core.export_queries_csv(self, out, flt, chunk_rows=chunk_rows))

    def export_queries_csv_page(
        self, flt: ReportFilter | None = None, *, after_seq: int | None = None,
        limit: int = 100,
    ) -> audit_pb2.CsvExport:
        """One page of the Reports export as CSV bytes, with ``has_more`` and
        ``next_after_seq`` for the next page."""
        return self._run(
            core.export_queries_csv_page(self, flt, after_seq=after_seq, limit=limit)
        )

    def register_resolution(
        self, number: str, date: str, user_ids: list[str], period_start: str,
        period_end: str, *, signer: Signer | None = None,
    ) -> Resolution:
        """Sign a resolution on the prosecutor's token and register it."""
        return self._run(core.register_resolution(
            self, number, date, user_ids, period_start, period_end, signer))

    def read_audit_trail(
        self, resolution_id: str, *, user_ids: list[str] | None = None, since: str = "",
        until: str = "", flt: ReportFilter | None = None, after_seq: int | None = None,
        limit: int = 100, prove: bool = False,
    ) -> QueryRowPage:
        """One page of the audit trail within the resolution's scope (the prosecutor)."""
        return self._run(core.read_audit_trail(
            self, resolution_id, user_ids=user_ids, since=since, until=until, flt=flt,
            after_seq=after_seq, limit=limit, prove=prove))

    # -- FM-1 reporting (issue 16) --------------------------------------------------------
    def fm1_submit(self, message: Mapping[str, Any], *, signer: Signer | None = None
                   ) -> core.Fm1Submitted:
        """Sign an FM-1 message (a JSON object) on the token, submit it, and verify the
        gateway's receipt offline (:func:`clients.fm1.verify_fm1_receipt`)."""
        return self._run(core.fm1_submit(self, message, signer))

    def fm1_status(self, message_id: str, provider_bin: str = "") -> Any:
        return self._run(core.fm1_status(self, message_id, provider_bin))

    def fm1_list(self, request: Any) -> Any:
        return self._run(core.fm1_list(self, request))

    def fm1_show(self, message_id: str, provider_bin: str = "") -> Any:
        return self._run(core.fm1_show(self, message_id, provider_bin))

    def fm1_export(self, request: Any) -> Any:
        return self._run(core.fm1_export(self, request))
    # -- the List and the Lists (issue 16, point 6; clients/_lists.py) ----------------------
    def publish_list(self, list_name: str, content: bytes, fmt: str, *,
                     source_reference: str = "", signer: Signer | None = None
                     ) -> screening_pb2.PublishListResponse:
        """Sign (on the token) and publish a new version of a list (the list officer)."""
        return self._run(_lists.publish_list(self, list_name, content, fmt,
                                             source_reference, signer))

    def lists(self) -> screening_pb2.ListsOverview:
        """The current version of each published list."""
        return self._run(_lists.lists(self))

    def screen(self, *, iin_bin: str = "", name: str = "", birth_date: str = "",
               client_ref: str = "") -> screening_pb2.ScreeningResult:
        """Screen a client against every list (a provider's compliance officer)."""
        return self._run(_lists.screen(self, iin_bin, name, birth_date, client_ref))

    def watch(self, client_ref: str, *, iin_bin: str = "", name: str = "",
              birth_date: str = "") -> screening_pb2.ScreeningResult:
        """Register a client for re-screening whenever a list changes; screened now."""
        return self._run(_lists.watch(self, client_ref, iin_bin, name, birth_date))

    def screening_outbox(self, *, include_read: bool = False
                         ) -> screening_pb2.ScreeningOutbox:
        """The provider's new matches from re-screening (read ones with include_read)."""
        return self._run(_lists.read_outbox(self, include_read))

