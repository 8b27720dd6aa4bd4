from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("signed_checkpoint", "tree_size", "root_hash", "key_id", "audit_key")
    SIGNED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIT_KEY_FIELD_NUMBER: _ClassVar[int]
    signed_checkpoint: bytes
    tree_size: int
    root_hash: bytes
    key_id: str
    audit_key: AuditKeyEndorsement
    def __init__(self, signed_checkpoint: _Optional[bytes] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., key_id: _Optional[str] = ..., audit_key: _Optional[_Union[AuditKeyEndorsement, _Mapping]] = ...) -> None: ...

class AuditKeyEndorsement(_message.Message):
    __slots__ = ("origin", "public_key_der", "signer_key_id", "signature")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_DER_FIELD_NUMBER: _ClassVar[int]
    SIGNER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    public_key_der: bytes
    signer_key_id: str
    signature: bytes
    def __init__(self, origin: _Optional[str] = ..., public_key_der: _Optional[bytes] = ..., signer_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("seq", "tree_size")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    tree_size: int
    def __init__(self, seq: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "hashes")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: int
    second: int
    def __init__(self, first: _Optional[int] = ..., second: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("first", "second", "hashes")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    first: int
    second: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first: _Optional[int] = ..., second: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AuditRef(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.AuditReceipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class QueryFilter(_message.Message):
    __slots__ = ("user_ids", "since", "until", "resource", "basis", "task", "outcome", "unit", "subject", "reason")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    since: str
    until: str
    resource: str
    basis: str
    task: str
    outcome: str
    unit: str
    subject: str
    reason: str
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., resource: _Optional[str] = ..., basis: _Optional[str] = ..., task: _Optional[str] = ..., outcome: _Optional[str] = ..., unit: _Optional[str] = ..., subject: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListQueriesRequest(_message.Message):
    __slots__ = ("filter", "after_seq", "has_after_seq", "limit", "prove", "tree_size")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    HAS_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PROVE_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter: QueryFilter
    after_seq: int
    has_after_seq: bool
    limit: int
    prove: bool
    tree_size: int
    def __init__(self, filter: _Optional[_Union[QueryFilter, _Mapping]] = ..., after_seq: _Optional[int] = ..., has_after_seq: _Optional[bool] = ..., limit: _Optional[int] = ..., prove: _Optional[bool] = ..., tree_size: _Optional[int] = ...) -> None: ...

class QueryRecord(_message.Message):
    __slots__ = ("seq", "time", "user_id", "event", "resource", "basis", "task", "outcome", "request_id", "unit", "subject", "justification", "parameters", "resource_number", "resource_name", "status_code", "reason", "message", "result_summary", "truncated", "leaf_hash", "proof")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: str
    user_id: str
    event: str
    resource: str
    basis: str
    task: str
    outcome: str
    request_id: str
    unit: str
    subject: str
    justification: str
    parameters: _containers.ScalarMap[str, str]
    resource_number: int
    resource_name: str
    status_code: str
    reason: str
    message: str
    result_summary: str
    truncated: bool
    leaf_hash: str
    proof: InclusionProof
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[str] = ..., user_id: _Optional[str] = ..., event: _Optional[str] = ..., resource: _Optional[str] = ..., basis: _Optional[str] = ..., task: _Optional[str] = ..., outcome: _Optional[str] = ..., request_id: _Optional[str] = ..., unit: _Optional[str] = ..., subject: _Optional[str] = ..., justification: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., resource_number: _Optional[int] = ..., resource_name: _Optional[str] = ..., status_code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., result_summary: _Optional[str] = ..., truncated: _Optional[bool] = ..., leaf_hash: _Optional[str] = ..., proof: _Optional[_Union[InclusionProof, _Mapping]] = ...) -> None: ...

class QueryPage(_message.Message):
    __slots__ = ("records", "has_more", "next_after_seq", "tree_size")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[QueryRecord]
    has_more: bool
    next_after_seq: int
    tree_size: int
    def __init__(self, records: _Optional[_Iterable[_Union[QueryRecord, _Mapping]]] = ..., has_more: _Optional[bool] = ..., next_after_seq: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class CsvChunk(_message.Message):
    __slots__ = ("data", "rows", "last", "total_rows")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    rows: int
    last: bool
    total_rows: int
    def __init__(self, data: _Optional[bytes] = ..., rows: _Optional[int] = ..., last: _Optional[bool] = ..., total_rows: _Optional[int] = ...) -> None: ...

class CsvExport(_message.Message):
    __slots__ = ("csv", "rows", "has_more", "next_after_seq")
    CSV_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    csv: bytes
    rows: int
    has_more: bool
    next_after_seq: int
    def __init__(self, csv: _Optional[bytes] = ..., rows: _Optional[int] = ..., has_more: _Optional[bool] = ..., next_after_seq: _Optional[int] = ...) -> None: ...

class RegisterResolutionRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class ResolutionInfo(_message.Message):
    __slots__ = ("id", "number", "date", "user_ids", "period_start", "period_end")
    ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    id: str
    number: str
    date: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    period_start: str
    period_end: str
    def __init__(self, id: _Optional[str] = ..., number: _Optional[str] = ..., date: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ...) -> None: ...

class ReadAuditTrailRequest(_message.Message):
    __slots__ = ("resolution_id", "user_ids", "since", "until", "after_seq", "has_after_seq", "limit", "prove", "tree_size", "filter")
    RESOLUTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    HAS_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PROVE_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    resolution_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    since: str
    until: str
    after_seq: int
    has_after_seq: bool
    limit: int
    prove: bool
    tree_size: int
    filter: QueryFilter
    def __init__(self, resolution_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., after_seq: _Optional[int] = ..., has_after_seq: _Optional[bool] = ..., limit: _Optional[int] = ..., prove: _Optional[bool] = ..., tree_size: _Optional[int] = ..., filter: _Optional[_Union[QueryFilter, _Mapping]] = ...) -> None: ...
