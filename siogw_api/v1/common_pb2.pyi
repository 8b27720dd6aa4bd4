from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Signature(_message.Message):
    __slots__ = ("keyid", "sig", "cert_der", "batch")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    SIG_FIELD_NUMBER: _ClassVar[int]
    CERT_DER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    sig: bytes
    cert_der: bytes
    batch: BatchProof
    def __init__(self, keyid: _Optional[str] = ..., sig: _Optional[bytes] = ..., cert_der: _Optional[bytes] = ..., batch: _Optional[_Union[BatchProof, _Mapping]] = ...) -> None: ...

class BatchProof(_message.Message):
    __slots__ = ("statement", "index", "path")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    statement: bytes
    index: int
    path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, statement: _Optional[bytes] = ..., index: _Optional[int] = ..., path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("payload_type", "payload", "signatures")
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    payload_type: str
    payload: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[Signature]
    def __init__(self, payload_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[Signature, _Mapping]]] = ...) -> None: ...

class AuditReceipt(_message.Message):
    __slots__ = ("seq", "leaf_hash", "tree_size")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    leaf_hash: bytes
    tree_size: int
    def __init__(self, seq: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., tree_size: _Optional[int] = ...) -> None: ...

class MaintenanceWindow(_message.Message):
    __slots__ = ("id", "starts_at", "ends_at", "description", "urgent")
    ID_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    starts_at: str
    ends_at: str
    description: str
    urgent: bool
    def __init__(self, id: _Optional[str] = ..., starts_at: _Optional[str] = ..., ends_at: _Optional[str] = ..., description: _Optional[str] = ..., urgent: _Optional[bool] = ...) -> None: ...
