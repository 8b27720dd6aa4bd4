from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminCommand(_message.Message):
    __slots__ = ("request_id", "created_at", "enroll_user", "block_user", "unblock_user", "revoke_certificate", "publish_maintenance", "register_certificate", "list_applications", "register_application", "refuse_application", "file_transfer", "list_transfers", "apply_transfer", "read_outbox", "mark_notice_read", "list_alerts", "acknowledge_alert", "record_emergency", "resolve_emergency", "list_emergencies", "import_crl", "list_certificates", "record_review", "list_overdue_reviews", "list_users")
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
    def __init__(self, request_id: _Optional[str] = ..., created_at: _Optional[str] = ..., enroll_user: _Optional[_Union[EnrollUser, _Mapping]] = ..., block_user: _Optional[_Union[BlockUser, _Mapping]] = ..., unblock_user: _Optional[_Union[UnblockUser, _Mapping]] = ..., revoke_certificate: _Optional[_Union[RevokeCertificate, _Mapping]] = ..., publish_maintenance: _Optional[_Union[PublishMaintenance, _Mapping]] = ..., register_certificate: _Optional[_Union[RegisterCertificate, _Mapping]] = ..., list_applications: _Optional[_Union[ListApplications, _Mapping]] = ..., register_application: _Optional[_Union[RegisterApplication, _Mapping]] = ..., refuse_application: _Optional[_Union[RefuseApplication, _Mapping]] = ..., file_transfer: _Optional[_Union[FileTransfer, _Mapping]] = ..., list_transfers: _Optional[_Union[ListTransfers, _Mapping]] = ..., apply_transfer: _Optional[_Union[ApplyTransfer, _Mapping]] = ..., read_outbox: _Optional[_Union[ReadOutbox, _Mapping]] = ..., mark_notice_read: _Optional[_Union[MarkNoticeRead, _Mapping]] = ..., list_alerts: _Optional[_Union[ListAlerts, _Mapping]] = ..., acknowledge_alert: _Optional[_Union[AcknowledgeAlert, _Mapping]] = ..., record_emergency: _Optional[_Union[RecordEmergency, _Mapping]] = ..., resolve_emergency: _Optional[_Union[ResolveEmergency, _Mapping]] = ..., list_emergencies: _Optional[_Union[ListEmergencies, _Mapping]] = ..., import_crl: _Optional[_Union[ImportCrl, _Mapping]] = ..., list_certificates: _Optional[_Union[ListCertificates, _Mapping]] = ..., record_review: _Optional[_Union[RecordReview, _Mapping]] = ..., list_overdue_reviews: _Optional[_Union[ListOverdueReviews, _Mapping]] = ..., list_users: _Optional[_Union[ListUsers, _Mapping]] = ...) -> None: ...

class EnrollUser(_message.Message):
    __slots__ = ("user_id", "full_name", "role", "unit", "post", "phone", "certificate_der", "device_public_key_der")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    certificate_der: bytes
    device_public_key_der: bytes
    def __init__(self, user_id: _Optional[str] = ..., full_name: _Optional[str] = ..., role: _Optional[str] = ..., unit: _Optional[str] = ..., post: _Optional[str] = ..., phone: _Optional[str] = ..., certificate_der: _Optional[bytes] = ..., device_public_key_der: _Optional[bytes] = ...) -> None: ...

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

class AdminRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class AdminResponse(_message.Message):
    __slots__ = ("message", "receipt", "data_json")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    message: str
    receipt: _common_pb2.AuditReceipt
    data_json: str
    def __init__(self, message: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., data_json: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("id", "onset_at", "causes", "measures", "resolved_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ONSET_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    onset_at: str
    causes: str
    measures: str
    resolved_at: str
    def __init__(self, id: _Optional[str] = ..., onset_at: _Optional[str] = ..., causes: _Optional[str] = ..., measures: _Optional[str] = ..., resolved_at: _Optional[str] = ...) -> None: ...

class Journal(_message.Message):
    __slots__ = ("windows", "emergencies")
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    EMERGENCIES_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[_common_pb2.MaintenanceWindow]
    emergencies: _containers.RepeatedCompositeFieldContainer[Emergency]
    def __init__(self, windows: _Optional[_Iterable[_Union[_common_pb2.MaintenanceWindow, _Mapping]]] = ..., emergencies: _Optional[_Iterable[_Union[Emergency, _Mapping]]] = ...) -> None: ...
