from server.gen.siogw.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminCommand(_message.Message):
    __slots__ = ("request_id", "created_at", "enroll_user", "block_user", "unblock_user", "revoke_certificate", "publish_maintenance", "register_certificate")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENROLL_USER_FIELD_NUMBER: _ClassVar[int]
    BLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_USER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    REGISTER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    created_at: str
    enroll_user: EnrollUser
    block_user: BlockUser
    unblock_user: UnblockUser
    revoke_certificate: RevokeCertificate
    publish_maintenance: PublishMaintenance
    register_certificate: RegisterCertificate
    def __init__(self, request_id: _Optional[str] = ..., created_at: _Optional[str] = ..., enroll_user: _Optional[_Union[EnrollUser, _Mapping]] = ..., block_user: _Optional[_Union[BlockUser, _Mapping]] = ..., unblock_user: _Optional[_Union[UnblockUser, _Mapping]] = ..., revoke_certificate: _Optional[_Union[RevokeCertificate, _Mapping]] = ..., publish_maintenance: _Optional[_Union[PublishMaintenance, _Mapping]] = ..., register_certificate: _Optional[_Union[RegisterCertificate, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnblockUser(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeCertificate(_message.Message):
    __slots__ = ("serial_hex", "reason")
    SERIAL_HEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serial_hex: str
    reason: str
    def __init__(self, serial_hex: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RegisterCertificate(_message.Message):
    __slots__ = ("user_id", "certificate_der")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    certificate_der: bytes
    def __init__(self, user_id: _Optional[str] = ..., certificate_der: _Optional[bytes] = ...) -> None: ...

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
    __slots__ = ("message", "receipt")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    message: str
    receipt: _common_pb2.AuditReceipt
    def __init__(self, message: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...
