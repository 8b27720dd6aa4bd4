"""The operations domain (issue 5: R3, R4, R8, R10, R12, R13, R15, R16) as a library.

Pure domain services over SQLAlchemy 2.x (own ``ops_`` tables beside the control plane's
``users``, ``certificates``, ``revocations`` and ``maintenance``, which they read and
write directly: one table per fact; SQLite or PostgreSQL), a clock and an audit callable
``record(event_type, actor, outcome, details)``; no gRPC. The gateway wires them into
AdminService / AuditService::

    from server.ops import Operations, audit_log_recorder
    ops = Operations.open(engine, record=audit_log_recorder(audit_log), trust=trust,
                          index=AuditIndexQueries(audit_index))
    ops.applications.file(envelope_json)             # R3
    ops.applications.register(actor, app_id)         # -> Enrolment for EnrollUser
    ops.lifecycle.block(actor, user_id, "violation", "reason")  # sessions end at once
    ops.rules.observe(record_dict)                   # R13/R15 violation rules
    ops.reports.queries(controller, QueryFilter(...))
    ops.prosecutor.read_trail(prosecutor, resolution_id, ...)

Every public method that acts for a person takes an :class:`Actor` and checks
:func:`authorize` first. See ``docs/adr/0006-operations.md``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from server.ops.applications import (
    Application,
    ApplicationService,
    Enrolment,
    Refusal,
    refusal_payload,
    verify_refusal,
)
from server.ops.autojournal import AutoJournal
from server.ops.base import Clock, OpsContext, Recorder, audit_log_recorder
from server.ops.certificates import CertificateInfo, CertificateService, CertificateStatus
from server.ops.documents import (
    PAYLOAD_APPLICATION,
    PAYLOAD_REFUSAL,
    PAYLOAD_RESOLUTION,
    PAYLOAD_TRANSFER,
    sign_document,
)
from server.ops.errors import (
    Duplicate,
    InvalidDocument,
    InvalidState,
    NotFound,
    NoticeTooShort,
    OpsStorageError,
    PermissionDenied,
    SignerMismatch,
)
from server.ops.journal import DEFAULT_NOTICE, Emergency, JournalService, Window
from server.ops.lifecycle import (
    BlockKind,
    LifecycleService,
    Notification,
    TransferEdit,
    UserRecord,
    UserStatus,
)
from server.ops.prosecutor import ProsecutorService, Resolution
from server.ops.reports import (
    AuditIndexQueries,
    QueryFilter,
    QueryIndex,
    QueryRecord,
    ReportPage,
    ReportService,
    Review,
    ReviewStatus,
)
from server.ops.roles import AUDIT_READERS, PERMISSIONS, Action, Actor, Role, authorize
from server.ops.rules import Alert, Rule, RuleEngine, default_rules
from server.ops.schema import create_schema, drop_schema
from signing.trust import TrustChecker
from siogw_api.timeutil import now_utc


@dataclass(frozen=True)
class Operations:
    """All operations services over one database, clock and audit recorder."""

    ctx: OpsContext
    applications: ApplicationService
    lifecycle: LifecycleService
    certificates: CertificateService
    rules: RuleEngine
    journal: JournalService
    reports: ReportService
    prosecutor: ProsecutorService
    #: The Journal's automatic entries (audit log, signer, upstream failures; §14).
    auto_journal: AutoJournal

    @classmethod
    def open(
        cls,
        engine: Engine,
        *,
        record: Recorder,
        trust: TrustChecker,
        index: QueryIndex,
        clock: Clock = now_utc,
        rules: list[Rule] | None = None,
        create: bool = True,
        maintenance_notice: _dt.timedelta = DEFAULT_NOTICE,
    ) -> Operations:
        """Build the services (creating the ``ops_`` tables unless ``create=False``);
        ``maintenance_notice``: how long before its start a window is published (§14)."""
        if create:
            create_schema(engine)
        ctx = OpsContext(engine=engine, record=record, clock=clock)
        lifecycle = LifecycleService(ctx, trust)
        return cls(
            ctx=ctx,
            applications=ApplicationService(ctx, trust),
            lifecycle=lifecycle,
            certificates=CertificateService(ctx, trust),
            rules=RuleEngine(ctx, lifecycle, rules),
            journal=JournalService(ctx, notice=maintenance_notice),
            reports=ReportService(ctx, index),
            prosecutor=ProsecutorService(ctx, trust, index),
            auto_journal=AutoJournal(ctx),
        )


__all__ = [
    "AUDIT_READERS",
    "PAYLOAD_APPLICATION",
    "PAYLOAD_REFUSAL",
    "PAYLOAD_RESOLUTION",
    "PAYLOAD_TRANSFER",
    "PERMISSIONS",
    "Action",
    "Actor",
    "Alert",
    "Application",
    "ApplicationService",
    "AuditIndexQueries",
    "AutoJournal",
    "BlockKind",
    "CertificateInfo",
    "CertificateService",
    "CertificateStatus",
    "Duplicate",
    "Emergency",
    "Enrolment",
    "InvalidDocument",
    "InvalidState",
    "JournalService",
    "LifecycleService",
    "NotFound",
    "NoticeTooShort",
    "Notification",
    "Operations",
    "OpsContext",
    "OpsStorageError",
    "PermissionDenied",
    "ProsecutorService",
    "QueryFilter",
    "QueryIndex",
    "QueryRecord",
    "Recorder",
    "Refusal",
    "ReportPage",
    "ReportService",
    "Resolution",
    "Review",
    "ReviewStatus",
    "Role",
    "Rule",
    "RuleEngine",
    "SignerMismatch",
    "TransferEdit",
    "UserRecord",
    "UserStatus",
    "Window",
    "audit_log_recorder",
    "authorize",
    "create_schema",
    "default_rules",
    "drop_schema",
    "refusal_payload",
    "sign_document",
    "verify_refusal",
]
