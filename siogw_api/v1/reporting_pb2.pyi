from siogw_api.v1 import audit_pb2 as _audit_pb2
from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitFm1Request(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class Fm1Ref(_message.Message):
    __slots__ = ("message_id", "provider_bin")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_BIN_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    provider_bin: str
    def __init__(self, message_id: _Optional[str] = ..., provider_bin: _Optional[str] = ...) -> None: ...

class Fm1Receipt(_message.Message):
    __slots__ = ("status", "acknowledgement", "checkpoint", "inclusion_proof")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGEMENT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    status: Fm1Status
    acknowledgement: _common_pb2.Envelope
    checkpoint: _audit_pb2.Checkpoint
    inclusion_proof: _audit_pb2.InclusionProof
    def __init__(self, status: _Optional[_Union[Fm1Status, _Mapping]] = ..., acknowledgement: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., checkpoint: _Optional[_Union[_audit_pb2.Checkpoint, _Mapping]] = ..., inclusion_proof: _Optional[_Union[_audit_pb2.InclusionProof, _Mapping]] = ...) -> None: ...

class Fm1Status(_message.Message):
    __slots__ = ("message_id", "provider_bin", "kind", "action", "amends", "submitted_by", "received_at", "deadline_at", "late", "lateness_seconds", "retention_until", "receipt", "request_seq", "envelope_sha256", "amended_by", "list_match", "origin")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_BIN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AMENDS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    LATENESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_UNTIL_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SEQ_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_SHA256_FIELD_NUMBER: _ClassVar[int]
    AMENDED_BY_FIELD_NUMBER: _ClassVar[int]
    LIST_MATCH_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    provider_bin: str
    kind: str
    action: str
    amends: str
    submitted_by: str
    received_at: str
    deadline_at: str
    late: bool
    lateness_seconds: int
    retention_until: str
    receipt: _common_pb2.AuditReceipt
    request_seq: int
    envelope_sha256: str
    amended_by: _containers.RepeatedScalarFieldContainer[str]
    list_match: bool
    origin: str
    def __init__(self, message_id: _Optional[str] = ..., provider_bin: _Optional[str] = ..., kind: _Optional[str] = ..., action: _Optional[str] = ..., amends: _Optional[str] = ..., submitted_by: _Optional[str] = ..., received_at: _Optional[str] = ..., deadline_at: _Optional[str] = ..., late: _Optional[bool] = ..., lateness_seconds: _Optional[int] = ..., retention_until: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., request_seq: _Optional[int] = ..., envelope_sha256: _Optional[str] = ..., amended_by: _Optional[_Iterable[str]] = ..., list_match: _Optional[bool] = ..., origin: _Optional[str] = ...) -> None: ...

class ListFm1Request(_message.Message):
    __slots__ = ("provider_bin", "kind", "since", "until", "late_only", "list_match_only", "after_id", "limit")
    PROVIDER_BIN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIST_MATCH_ONLY_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    provider_bin: str
    kind: str
    since: str
    until: str
    late_only: bool
    list_match_only: bool
    after_id: int
    limit: int
    def __init__(self, provider_bin: _Optional[str] = ..., kind: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., late_only: _Optional[bool] = ..., list_match_only: _Optional[bool] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class Fm1Page(_message.Message):
    __slots__ = ("messages", "has_more", "next_after_id")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Fm1Status]
    has_more: bool
    next_after_id: int
    def __init__(self, messages: _Optional[_Iterable[_Union[Fm1Status, _Mapping]]] = ..., has_more: _Optional[bool] = ..., next_after_id: _Optional[int] = ...) -> None: ...

class Fm1Message(_message.Message):
    __slots__ = ("status", "message_json", "envelope")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_JSON_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    status: Fm1Status
    message_json: str
    envelope: _common_pb2.Envelope
    def __init__(self, status: _Optional[_Union[Fm1Status, _Mapping]] = ..., message_json: _Optional[str] = ..., envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...
