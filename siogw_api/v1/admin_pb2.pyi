from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminCommand(_message.Message):
    __slots__ = ("request_id", "created_at", "enroll_user", "block_user", "unblock_user", "revoke_certificate", "publish_maintenance", "register_certificate", "list_applications", "register_application", "refuse_application", "file_transfer", "list_transfers", "apply_transfer", "read_outbox", "mark_notice_read", "list_alerts", "acknowledge_alert", "record_emergency", "resolve_emergency", "list_emergencies", "import_crl", "list_certificates", "record_review", "list_overdue_reviews", "list_users", "cancel_maintenance")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENROLL_USER_FIELD_NUMBER: _ClassVar[int]
    BLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    REGISTER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    LIST_APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    REGISTER_APPLICATION_FIELD_NUMBER: _ClassVar[int]
    REFUSE_APPLICATION_FIELD_NUMBER: _ClassVar[int]
    FILE_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    LIST_TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    APPLY_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    READ_OUTBOX_FIELD_NUMBER: _ClassVar[int]
    MARK_NOTICE_READ_FIELD_NUMBER: _ClassVar[int]
    LIST_ALERTS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_ALERT_FIELD_NUMBER: _ClassVar[int]
    RECORD_EMERGENCY_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_EMERGENCY_FIELD_NUMBER: _ClassVar[int]
    LIST_EMERGENCIES_FIELD_NUMBER: _ClassVar[int]
    IMPORT_CRL_FIELD_NUMBER: _ClassVar[int]
    LIST_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    RECORD_REVIEW_FIELD_NUMBER: _ClassVar[int]
    LIST_OVERDUE_REVIEWS_FIELD_NUMBER: _ClassVar[int]
    LIST_USERS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    created_at: str
    enroll_user: EnrollUser
    block_user: BlockUser
    unblock_user: UnblockUser
    revoke_certificate: RevokeCertificate
    publish_maintenance: PublishMaintenance
    register_certificate: RegisterCertificate
    list_applications: ListApplications
    register_application: RegisterApplication
    refuse_application: RefuseApplication
    file_transfer: FileTransfer
    list_transfers: ListTransfers
    apply_transfer: ApplyTransfer
    read_outbox: ReadOutbox
    mark_notice_read: MarkNoticeRead
    list_alerts: ListAlerts
    acknowledge_alert: AcknowledgeAlert
    record_emergency: RecordEmergency
    resolve_emergency: ResolveEmergency
    list_emergencies: ListEmergencies
    import_crl: ImportCrl
    list_certificates: ListCertificates
    record_review: RecordReview
    list_overdue_reviews: ListOverdueReviews
    list_users: ListUsers
    cancel_maintenance: CancelMaintenance
    def __init__(self, request_id: _Optional[str] = ..., created_at: _Optional[str] = ..., enroll_user: _Optional[_Union[EnrollUser, _Mapping]] = ..., block_user: _Optional[_Union[BlockUser, _Mapping]] = ..., unblock_user: _Optional[_Union[UnblockUser, _Mapping]] = ..., revoke_certificate: _Optional[_Union[RevokeCertificate, _Mapping]] = ..., publish_maintenance: _Optional[_Union[PublishMaintenance, _Mapping]] = ..., register_certificate: _Optional[_Union[RegisterCertificate, _Mapping]] = ..., list_applications: _Optional[_Union[ListApplications, _Mapping]] = ..., register_application: _Optional[_Union[RegisterApplication, _Mapping]] = ..., refuse_application: _Optional[_Union[RefuseApplication, _Mapping]] = ..., file_transfer: _Optional[_Union[FileTransfer, _Mapping]] = ..., list_transfers: _Optional[_Union[ListTransfers, _Mapping]] = ..., apply_transfer: _Optional[_Union[ApplyTransfer, _Mapping]] = ..., read_outbox: _Optional[_Union[ReadOutbox, _Mapping]] = ..., mark_notice_read: _Optional[_Union[MarkNoticeRead, _Mapping]] = ..., list_alerts: _Optional[_Union[ListAlerts, _Mapping]] = ..., acknowledge_alert: _Optional[_Union[AcknowledgeAlert, _Mapping]] = ..., record_emergency: _Optional[_Union[RecordEmergency, _Mapping]] = ..., resolve_emergency: _Optional[_Union[ResolveEmergency, _Mapping]] = ..., list_emergencies: _Optional[_Union[ListEmergencies, _Mapping]] = ..., import_crl: _Optional[_Union[ImportCrl, _Mapping]] = ..., list_certificates: _Optional[_Union[ListCertificates, _Mapping]] = ..., record_review: _Optional[_Union[RecordReview, _Mapping]] = ..., list_overdue_reviews: _Optional[_Union[ListOverdueReviews, _Mapping]] = ..., list_users: _Optional[_Union[ListUsers, _Mapping]] = ..., cancel_maintenance: _Optional[_Union[CancelMaintenance, _Mapping]] = ...) -> None: ...

class EnrollUser(_message.Message):
    __slots__ = ("user_id", "full_name", "role", "unit", "post", "phone", "certificate_der", "device_public_key_der", "provider_bin")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_BIN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    certificate_der: bytes
    device_public_key_der: bytes
    provider_bin: str
    def __init__(self, user_id: _Optional[str] = ..., full_name: _Optional[str] = ..., role: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., phone: _Optional[str] = ..., certificate_der: _Optional[bytes] = ..., device_public_key_der: _Optional[bytes] = ..., provider_bin: _Optional[str] = ...) -> None: ...

class BlockUser(_message.Message):
    __slots__ = ("user_id", "reason", "kind")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    kind: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class UnblockUser(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeCertificate(_message.Message):
    __slots__ = ("serial_hex", "reason", "fingerprint")
    SERIAL_HEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    serial_hex: str
    reason: str
    fingerprint: str
    def __init__(self, serial_hex: _Optional[str] = ..., reason: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class RegisterCertificate(_message.Message):
    __slots__ = ("user_id", "certificate_der", "token_label")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_LABEL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    certificate_der: bytes
    token_label: str
    def __init__(self, user_id: _Optional[str] = ..., certificate_der: _Optional[bytes] = ..., token_label: _Optional[str] = ...) -> None: ...

class PublishMaintenance(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: _common_pb2.MaintenanceWindow
    def __init__(self, window: _Optional[_Union[_common_pb2.MaintenanceWindow, _Mapping]] = ...) -> None: ...

class CancelMaintenance(_message.Message):
    __slots__ = ("window_id", "reason")
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    window_id: str
    reason: str
    def __init__(self, window_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AdminRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class AdminResponse(_message.Message):
    __slots__ = ("message", "receipt", "user", "users", "certificate", "certificates", "crl_import", "applications", "enrolment", "refusal", "transfer", "transfers", "notice", "outbox", "alert", "alerts", "emergency", "emergencies", "maintenance", "review", "review_statuses")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    CRL_IMPORT_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    EMERGENCY_FIELD_NUMBER: _ClassVar[int]
    EMERGENCIES_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_STATUSES_FIELD_NUMBER: _ClassVar[int]
    message: str
    receipt: _common_pb2.AuditReceipt
    user: UserEntry
    users: UserList
    certificate: CertificateEntry
    certificates: CertificateList
    crl_import: CrlImportResult
    applications: ApplicationList
    enrolment: EnrolmentInfo
    refusal: RefusalInfo
    transfer: TransferEntry
    transfers: TransferList
    notice: NoticeEntry
    outbox: OutboxList
    alert: AlertEntry
    alerts: AlertList
    emergency: Emergency
    emergencies: EmergencyList
    maintenance: MaintenanceEntry
    review: ReviewEntry
    review_statuses: ReviewStatusList
    def __init__(self, message: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., user: _Optional[_Union[UserEntry, _Mapping]] = ..., users: _Optional[_Union[UserList, _Mapping]] = ..., certificate: _Optional[_Union[CertificateEntry, _Mapping]] = ..., certificates: _Optional[_Union[CertificateList, _Mapping]] = ..., crl_import: _Optional[_Union[CrlImportResult, _Mapping]] = ..., applications: _Optional[_Union[ApplicationList, _Mapping]] = ..., enrolment: _Optional[_Union[EnrolmentInfo, _Mapping]] = ..., refusal: _Optional[_Union[RefusalInfo, _Mapping]] = ..., transfer: _Optional[_Union[TransferEntry, _Mapping]] = ..., transfers: _Optional[_Union[TransferList, _Mapping]] = ..., notice: _Optional[_Union[NoticeEntry, _Mapping]] = ..., outbox: _Optional[_Union[OutboxList, _Mapping]] = ..., alert: _Optional[_Union[AlertEntry, _Mapping]] = ..., alerts: _Optional[_Union[AlertList, _Mapping]] = ..., emergency: _Optional[_Union[Emergency, _Mapping]] = ..., emergencies: _Optional[_Union[EmergencyList, _Mapping]] = ..., maintenance: _Optional[_Union[MaintenanceEntry, _Mapping]] = ..., review: _Optional[_Union[ReviewEntry, _Mapping]] = ..., review_statuses: _Optional[_Union[ReviewStatusList, _Mapping]] = ...) -> None: ...

class UserEntry(_message.Message):
    __slots__ = ("user_id", "full_name", "role", "unit", "post", "phone", "status", "block_kind", "status_reason", "iin", "basis", "application_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    IIN_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    status: str
    block_kind: str
    status_reason: str
    iin: str
    basis: str
    application_id: str
    def __init__(self, user_id: _Optional[str] = ..., full_name: _Optional[str] = ..., role: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., phone: _Optional[str] = ..., status: _Optional[str] = ..., block_kind: _Optional[str] = ..., status_reason: _Optional[str] = ..., iin: _Optional[str] = ..., basis: _Optional[str] = ..., application_id: _Optional[str] = ...) -> None: ...

class UserList(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserEntry]
    def __init__(self, users: _Optional[_Iterable[_Union[UserEntry, _Mapping]]] = ...) -> None: ...

class CertificateEntry(_message.Message):
    __slots__ = ("fingerprint", "user_id", "serial_hex", "issuer", "subject", "not_before", "not_after", "token_label", "registered_at", "revoked_at", "revocation_reason", "warnings", "pin_changed_at", "pin_reported_at")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_HEX_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_LABEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PIN_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    PIN_REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    user_id: str
    serial_hex: str
    issuer: str
    subject: str
    not_before: str
    not_after: str
    token_label: str
    registered_at: str
    revoked_at: str
    revocation_reason: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    pin_changed_at: str
    pin_reported_at: str
    def __init__(self, fingerprint: _Optional[str] = ..., user_id: _Optional[str] = ..., serial_hex: _Optional[str] = ..., issuer: _Optional[str] = ..., subject: _Optional[str] = ..., not_before: _Optional[str] = ..., not_after: _Optional[str] = ..., token_label: _Optional[str] = ..., registered_at: _Optional[str] = ..., revoked_at: _Optional[str] = ..., revocation_reason: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., pin_changed_at: _Optional[str] = ..., pin_reported_at: _Optional[str] = ...) -> None: ...

class CertificateList(_message.Message):
    __slots__ = ("certificates",)
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[CertificateEntry]
    def __init__(self, certificates: _Optional[_Iterable[_Union[CertificateEntry, _Mapping]]] = ...) -> None: ...

class CrlImportResult(_message.Message):
    __slots__ = ("revoked",)
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    revoked: _containers.RepeatedCompositeFieldContainer[CertificateEntry]
    def __init__(self, revoked: _Optional[_Iterable[_Union[CertificateEntry, _Mapping]]] = ...) -> None: ...

class ApplicationEntry(_message.Message):
    __slots__ = ("id", "iin", "full_name", "unit", "post", "phone", "requested_role", "basis", "cert_fingerprint", "corrects", "received_at", "deadline_at", "status", "decided_at", "decided_by", "refusal_reason", "user_id", "overdue")
    ID_FIELD_NUMBER: _ClassVar[int]
    IIN_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_ROLE_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    CERT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    iin: str
    full_name: str
    unit: str
    post: str
    phone: str
    requested_role: str
    basis: str
    cert_fingerprint: str
    corrects: str
    received_at: str
    deadline_at: str
    status: str
    decided_at: str
    decided_by: str
    refusal_reason: str
    user_id: str
    overdue: bool
    def __init__(self, id: _Optional[str] = ..., iin: _Optional[str] = ..., full_name: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., phone: _Optional[str] = ..., requested_role: _Optional[str] = ..., basis: _Optional[str] = ..., cert_fingerprint: _Optional[str] = ..., corrects: _Optional[str] = ..., received_at: _Optional[str] = ..., deadline_at: _Optional[str] = ..., status: _Optional[str] = ..., decided_at: _Optional[str] = ..., decided_by: _Optional[str] = ..., refusal_reason: _Optional[str] = ..., user_id: _Optional[str] = ..., overdue: _Optional[bool] = ...) -> None: ...

class ApplicationList(_message.Message):
    __slots__ = ("applications",)
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[ApplicationEntry]
    def __init__(self, applications: _Optional[_Iterable[_Union[ApplicationEntry, _Mapping]]] = ...) -> None: ...

class EnrolmentInfo(_message.Message):
    __slots__ = ("user_id", "full_name", "role", "unit", "post", "phone", "basis", "application_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    basis: str
    application_id: str
    def __init__(self, user_id: _Optional[str] = ..., full_name: _Optional[str] = ..., role: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., phone: _Optional[str] = ..., basis: _Optional[str] = ..., application_id: _Optional[str] = ...) -> None: ...

class RefusalInfo(_message.Message):
    __slots__ = ("application_id", "iin", "reason", "refused_by", "refused_at", "signer_subject")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    IIN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REFUSED_BY_FIELD_NUMBER: _ClassVar[int]
    REFUSED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    application_id: str
    iin: str
    reason: str
    refused_by: str
    refused_at: str
    signer_subject: str
    def __init__(self, application_id: _Optional[str] = ..., iin: _Optional[str] = ..., reason: _Optional[str] = ..., refused_by: _Optional[str] = ..., refused_at: _Optional[str] = ..., signer_subject: _Optional[str] = ...) -> None: ...

class TransferEntry(_message.Message):
    __slots__ = ("id", "user_id", "unit", "post", "order_number", "order_signed_at", "received_at", "late", "status", "applied_at", "applied_by", "overdue")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    ORDER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ORDER_SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    unit: str
    post: str
    order_number: str
    order_signed_at: str
    received_at: str
    late: bool
    status: str
    applied_at: str
    applied_by: str
    overdue: bool
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., order_number: _Optional[str] = ..., order_signed_at: _Optional[str] = ..., received_at: _Optional[str] = ..., late: _Optional[bool] = ..., status: _Optional[str] = ..., applied_at: _Optional[str] = ..., applied_by: _Optional[str] = ..., overdue: _Optional[bool] = ...) -> None: ...

class TransferList(_message.Message):
    __slots__ = ("transfers",)
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    transfers: _containers.RepeatedCompositeFieldContainer[TransferEntry]
    def __init__(self, transfers: _Optional[_Iterable[_Union[TransferEntry, _Mapping]]] = ...) -> None: ...

class NoticeEntry(_message.Message):
    __slots__ = ("id", "created_at", "user_id", "kind", "reason", "alert_id", "read_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    created_at: str
    user_id: str
    kind: str
    reason: str
    alert_id: int
    read_at: str
    def __init__(self, id: _Optional[int] = ..., created_at: _Optional[str] = ..., user_id: _Optional[str] = ..., kind: _Optional[str] = ..., reason: _Optional[str] = ..., alert_id: _Optional[int] = ..., read_at: _Optional[str] = ...) -> None: ...

class OutboxList(_message.Message):
    __slots__ = ("notices",)
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[NoticeEntry]
    def __init__(self, notices: _Optional[_Iterable[_Union[NoticeEntry, _Mapping]]] = ...) -> None: ...

class AlertEntry(_message.Message):
    __slots__ = ("id", "raised_at", "rule", "user_id", "blocking", "summary", "details_json", "record_seq", "acknowledged_at", "acknowledged_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORD_SEQ_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    id: int
    raised_at: str
    rule: str
    user_id: str
    blocking: bool
    summary: str
    details_json: str
    record_seq: int
    acknowledged_at: str
    acknowledged_by: str
    def __init__(self, id: _Optional[int] = ..., raised_at: _Optional[str] = ..., rule: _Optional[str] = ..., user_id: _Optional[str] = ..., blocking: _Optional[bool] = ..., summary: _Optional[str] = ..., details_json: _Optional[str] = ..., record_seq: _Optional[int] = ..., acknowledged_at: _Optional[str] = ..., acknowledged_by: _Optional[str] = ...) -> None: ...

class AlertList(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[AlertEntry]
    def __init__(self, alerts: _Optional[_Iterable[_Union[AlertEntry, _Mapping]]] = ...) -> None: ...

class EmergencyList(_message.Message):
    __slots__ = ("emergencies",)
    EMERGENCIES_FIELD_NUMBER: _ClassVar[int]
    emergencies: _containers.RepeatedCompositeFieldContainer[Emergency]
    def __init__(self, emergencies: _Optional[_Iterable[_Union[Emergency, _Mapping]]] = ...) -> None: ...

class MaintenanceEntry(_message.Message):
    __slots__ = ("id", "starts_at", "ends_at", "description", "published_by", "cancelled_at", "cancelled_by", "cancel_reason", "urgent")
    ID_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_AT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    starts_at: str
    ends_at: str
    description: str
    published_by: str
    cancelled_at: str
    cancelled_by: str
    cancel_reason: str
    urgent: bool
    def __init__(self, id: _Optional[str] = ..., starts_at: _Optional[str] = ..., ends_at: _Optional[str] = ..., description: _Optional[str] = ..., published_by: _Optional[str] = ..., cancelled_at: _Optional[str] = ..., cancelled_by: _Optional[str] = ..., cancel_reason: _Optional[str] = ..., urgent: _Optional[bool] = ...) -> None: ...

class ReviewEntry(_message.Message):
    __slots__ = ("id", "controller_id", "period_start", "period_end", "reviewed_at", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    REVIEWED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: int
    controller_id: str
    period_start: str
    period_end: str
    reviewed_at: str
    note: str
    def __init__(self, id: _Optional[int] = ..., controller_id: _Optional[str] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., reviewed_at: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ReviewStatusEntry(_message.Message):
    __slots__ = ("controller_id", "last_review_at", "overdue", "due_since")
    CONTROLLER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_REVIEW_AT_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    DUE_SINCE_FIELD_NUMBER: _ClassVar[int]
    controller_id: str
    last_review_at: str
    overdue: bool
    due_since: str
    def __init__(self, controller_id: _Optional[str] = ..., last_review_at: _Optional[str] = ..., overdue: _Optional[bool] = ..., due_since: _Optional[str] = ...) -> None: ...

class ReviewStatusList(_message.Message):
    __slots__ = ("controllers",)
    CONTROLLERS_FIELD_NUMBER: _ClassVar[int]
    controllers: _containers.RepeatedCompositeFieldContainer[ReviewStatusEntry]
    def __init__(self, controllers: _Optional[_Iterable[_Union[ReviewStatusEntry, _Mapping]]] = ...) -> None: ...

class ListApplications(_message.Message):
    __slots__ = ("status", "overdue_only")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_ONLY_FIELD_NUMBER: _ClassVar[int]
    status: str
    overdue_only: bool
    def __init__(self, status: _Optional[str] = ..., overdue_only: _Optional[bool] = ...) -> None: ...

class RegisterApplication(_message.Message):
    __slots__ = ("application_id", "user_id")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    application_id: str
    user_id: str
    def __init__(self, application_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class RefuseApplication(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class FileTransfer(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class ListTransfers(_message.Message):
    __slots__ = ("late_only", "pending_only", "overdue_only")
    LATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PENDING_ONLY_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_ONLY_FIELD_NUMBER: _ClassVar[int]
    late_only: bool
    pending_only: bool
    overdue_only: bool
    def __init__(self, late_only: _Optional[bool] = ..., pending_only: _Optional[bool] = ..., overdue_only: _Optional[bool] = ...) -> None: ...

class ApplyTransfer(_message.Message):
    __slots__ = ("transfer_id",)
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    def __init__(self, transfer_id: _Optional[str] = ...) -> None: ...

class ReadOutbox(_message.Message):
    __slots__ = ("include_read",)
    INCLUDE_READ_FIELD_NUMBER: _ClassVar[int]
    include_read: bool
    def __init__(self, include_read: _Optional[bool] = ...) -> None: ...

class MarkNoticeRead(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: int
    def __init__(self, notification_id: _Optional[int] = ...) -> None: ...

class ListAlerts(_message.Message):
    __slots__ = ("open_only", "user_id")
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    open_only: bool
    user_id: str
    def __init__(self, open_only: _Optional[bool] = ..., user_id: _Optional[str] = ...) -> None: ...

class AcknowledgeAlert(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    def __init__(self, alert_id: _Optional[int] = ...) -> None: ...

class RecordEmergency(_message.Message):
    __slots__ = ("onset_at", "causes", "measures", "resolved_at")
    ONSET_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    onset_at: str
    causes: str
    measures: str
    resolved_at: str
    def __init__(self, onset_at: _Optional[str] = ..., causes: _Optional[str] = ..., measures: _Optional[str] = ..., resolved_at: _Optional[str] = ...) -> None: ...

class ResolveEmergency(_message.Message):
    __slots__ = ("emergency_id", "resolved_at", "measures")
    EMERGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    emergency_id: str
    resolved_at: str
    measures: str
    def __init__(self, emergency_id: _Optional[str] = ..., resolved_at: _Optional[str] = ..., measures: _Optional[str] = ...) -> None: ...

class ListEmergencies(_message.Message):
    __slots__ = ("open_only",)
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    open_only: bool
    def __init__(self, open_only: _Optional[bool] = ...) -> None: ...

class ImportCrl(_message.Message):
    __slots__ = ("crl",)
    CRL_FIELD_NUMBER: _ClassVar[int]
    crl: bytes
    def __init__(self, crl: _Optional[bytes] = ...) -> None: ...

class ListCertificates(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class RecordReview(_message.Message):
    __slots__ = ("period_start", "period_end", "note")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    period_start: str
    period_end: str
    note: str
    def __init__(self, period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ListOverdueReviews(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListUsers(_message.Message):
    __slots__ = ("role",)
    ROLE_FIELD_NUMBER: _ClassVar[int]
    role: str
    def __init__(self, role: _Optional[str] = ...) -> None: ...

class FileApplicationRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class ApplicantRequest(_message.Message):
    __slots__ = ("proof",)
    PROOF_FIELD_NUMBER: _ClassVar[int]
    proof: _common_pb2.Envelope
    def __init__(self, proof: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ApplicantProof(_message.Message):
    __slots__ = ("application_id", "created_at")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    application_id: str
    created_at: str
    def __init__(self, application_id: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class ApplicationStatus(_message.Message):
    __slots__ = ("application_id", "status", "received_at", "deadline_at", "decided_at", "refusal_reason", "user_id", "corrects")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_FIELD_NUMBER: _ClassVar[int]
    application_id: str
    status: str
    received_at: str
    deadline_at: str
    decided_at: str
    refusal_reason: str
    user_id: str
    corrects: str
    def __init__(self, application_id: _Optional[str] = ..., status: _Optional[str] = ..., received_at: _Optional[str] = ..., deadline_at: _Optional[str] = ..., decided_at: _Optional[str] = ..., refusal_reason: _Optional[str] = ..., user_id: _Optional[str] = ..., corrects: _Optional[str] = ...) -> None: ...

class RefusalResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class GetJournalRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Emergency(_message.Message):
    __slots__ = ("id", "onset_at", "causes", "measures", "resolved_at", "recorded_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    ONSET_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    onset_at: str
    causes: str
    measures: str
    resolved_at: str
    recorded_by: str
    def __init__(self, id: _Optional[str] = ..., onset_at: _Optional[str] = ..., causes: _Optional[str] = ..., measures: _Optional[str] = ..., resolved_at: _Optional[str] = ..., recorded_by: _Optional[str] = ...) -> None: ...

class Journal(_message.Message):
    __slots__ = ("windows", "emergencies")
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    EMERGENCIES_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[_common_pb2.MaintenanceWindow]
    emergencies: _containers.RepeatedCompositeFieldContainer[Emergency]
    def __init__(self, windows: _Optional[_Iterable[_Union[_common_pb2.MaintenanceWindow, _Mapping]]] = ..., emergencies: _Optional[_Iterable[_Union[Emergency, _Mapping]]] = ...) -> None: ...
