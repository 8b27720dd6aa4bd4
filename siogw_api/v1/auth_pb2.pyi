from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SecondFactor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECOND_FACTOR_UNSPECIFIED: _ClassVar[SecondFactor]
    SECOND_FACTOR_SMS: _ClassVar[SecondFactor]
    SECOND_FACTOR_BIOMETRIC: _ClassVar[SecondFactor]
SECOND_FACTOR_UNSPECIFIED: SecondFactor
SECOND_FACTOR_SMS: SecondFactor
SECOND_FACTOR_BIOMETRIC: SecondFactor

class BeginLoginRequest(_message.Message):
    __slots__ = ("user_id", "certificate_der")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    certificate_der: bytes
    def __init__(self, user_id: _Optional[str] = ..., certificate_der: _Optional[bytes] = ...) -> None: ...

class BeginLoginResponse(_message.Message):
    __slots__ = ("login_id", "challenge", "factors", "expires_at")
    LOGIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    login_id: str
    challenge: bytes
    factors: _containers.RepeatedScalarFieldContainer[SecondFactor]
    expires_at: str
    def __init__(self, login_id: _Optional[str] = ..., challenge: _Optional[bytes] = ..., factors: _Optional[_Iterable[_Union[SecondFactor, str]]] = ..., expires_at: _Optional[str] = ...) -> None: ...

class ProveLoginRequest(_message.Message):
    __slots__ = ("login_id", "signed_challenge", "factor")
    LOGIN_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNED_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    login_id: str
    signed_challenge: _common_pb2.Envelope
    factor: SecondFactor
    def __init__(self, login_id: _Optional[str] = ..., signed_challenge: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., factor: _Optional[_Union[SecondFactor, str]] = ...) -> None: ...

class ProveLoginResponse(_message.Message):
    __slots__ = ("factor", "sms_destination", "device_challenge")
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    SMS_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    factor: SecondFactor
    sms_destination: str
    device_challenge: bytes
    def __init__(self, factor: _Optional[_Union[SecondFactor, str]] = ..., sms_destination: _Optional[str] = ..., device_challenge: _Optional[bytes] = ...) -> None: ...

class BiometricAssertion(_message.Message):
    __slots__ = ("device_key_id", "signature", "method")
    DEVICE_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    device_key_id: str
    signature: bytes
    method: str
    def __init__(self, device_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., method: _Optional[str] = ...) -> None: ...

class CompleteLoginRequest(_message.Message):
    __slots__ = ("login_id", "sms_code", "biometric", "pin_changed_at")
    LOGIN_ID_FIELD_NUMBER: _ClassVar[int]
    SMS_CODE_FIELD_NUMBER: _ClassVar[int]
    BIOMETRIC_FIELD_NUMBER: _ClassVar[int]
    PIN_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    login_id: str
    sms_code: str
    biometric: BiometricAssertion
    pin_changed_at: str
    def __init__(self, login_id: _Optional[str] = ..., sms_code: _Optional[str] = ..., biometric: _Optional[_Union[BiometricAssertion, _Mapping]] = ..., pin_changed_at: _Optional[str] = ...) -> None: ...

class CompleteLoginResponse(_message.Message):
    __slots__ = ("session_token", "expires_at", "consent_required", "consent_version", "receipt", "pin_changed_at", "pin_warning")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    PIN_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    PIN_WARNING_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    expires_at: str
    consent_required: bool
    consent_version: str
    receipt: _common_pb2.AuditReceipt
    pin_changed_at: str
    pin_warning: str
    def __init__(self, session_token: _Optional[str] = ..., expires_at: _Optional[str] = ..., consent_required: _Optional[bool] = ..., consent_version: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., pin_changed_at: _Optional[str] = ..., pin_warning: _Optional[str] = ...) -> None: ...

class GetConsentRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsentText(_message.Message):
    __slots__ = ("version", "text", "sha256")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    version: str
    text: str
    sha256: bytes
    def __init__(self, version: _Optional[str] = ..., text: _Optional[str] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class SignConsentRequest(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _common_pb2.Envelope
    def __init__(self, consent: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class SignConsentResponse(_message.Message):
    __slots__ = ("signed_at", "receipt")
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    signed_at: str
    receipt: _common_pb2.AuditReceipt
    def __init__(self, signed_at: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
