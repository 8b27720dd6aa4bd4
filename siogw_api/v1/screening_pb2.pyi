from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScreeningOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCREENING_OUTCOME_UNSPECIFIED: _ClassVar[ScreeningOutcome]
    SCREENING_OUTCOME_NO_MATCH: _ClassVar[ScreeningOutcome]
    SCREENING_OUTCOME_POSSIBLE_MATCH: _ClassVar[ScreeningOutcome]
    SCREENING_OUTCOME_MATCH: _ClassVar[ScreeningOutcome]
SCREENING_OUTCOME_UNSPECIFIED: ScreeningOutcome
SCREENING_OUTCOME_NO_MATCH: ScreeningOutcome
SCREENING_OUTCOME_POSSIBLE_MATCH: ScreeningOutcome
SCREENING_OUTCOME_MATCH: ScreeningOutcome

class ListPublication(_message.Message):
    __slots__ = ("request_id", "created_at", "list_name", "format", "content", "source_reference")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    created_at: str
    list_name: str
    format: str
    content: bytes
    source_reference: str
    def __init__(self, request_id: _Optional[str] = ..., created_at: _Optional[str] = ..., list_name: _Optional[str] = ..., format: _Optional[str] = ..., content: _Optional[bytes] = ..., source_reference: _Optional[str] = ...) -> None: ...

class PublishListRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ListVersion(_message.Message):
    __slots__ = ("list_name", "version", "digest", "entries", "published_at", "published_by", "source_reference", "format")
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    list_name: str
    version: int
    digest: str
    entries: int
    published_at: str
    published_by: str
    source_reference: str
    format: str
    def __init__(self, list_name: _Optional[str] = ..., version: _Optional[int] = ..., digest: _Optional[str] = ..., entries: _Optional[int] = ..., published_at: _Optional[str] = ..., published_by: _Optional[str] = ..., source_reference: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class PublishListResponse(_message.Message):
    __slots__ = ("version", "rescreened", "new_matches", "receipt", "message")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESCREENED_FIELD_NUMBER: _ClassVar[int]
    NEW_MATCHES_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    version: ListVersion
    rescreened: int
    new_matches: int
    receipt: _common_pb2.AuditReceipt
    message: str
    def __init__(self, version: _Optional[_Union[ListVersion, _Mapping]] = ..., rescreened: _Optional[int] = ..., new_matches: _Optional[int] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class GetListsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListsOverview(_message.Message):
    __slots__ = ("lists",)
    LISTS_FIELD_NUMBER: _ClassVar[int]
    lists: _containers.RepeatedCompositeFieldContainer[ListVersion]
    def __init__(self, lists: _Optional[_Iterable[_Union[ListVersion, _Mapping]]] = ...) -> None: ...

class ScreeningSubject(_message.Message):
    __slots__ = ("iin_bin", "name", "birth_date")
    IIN_BIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    iin_bin: str
    name: str
    birth_date: str
    def __init__(self, iin_bin: _Optional[str] = ..., name: _Optional[str] = ..., birth_date: _Optional[str] = ...) -> None: ...

class ScreenRequest(_message.Message):
    __slots__ = ("subject", "client_ref")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REF_FIELD_NUMBER: _ClassVar[int]
    subject: ScreeningSubject
    client_ref: str
    def __init__(self, subject: _Optional[_Union[ScreeningSubject, _Mapping]] = ..., client_ref: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("client_ref", "subject")
    CLIENT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    client_ref: str
    subject: ScreeningSubject
    def __init__(self, client_ref: _Optional[str] = ..., subject: _Optional[_Union[ScreeningSubject, _Mapping]] = ...) -> None: ...

class ScreeningMatch(_message.Message):
    __slots__ = ("list_name", "version", "entry_ref", "kind", "outcome", "basis", "score", "matched_name", "names", "iin_bin", "birth_date", "country", "reference")
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_NAME_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    IIN_BIN_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    list_name: str
    version: int
    entry_ref: str
    kind: str
    outcome: ScreeningOutcome
    basis: str
    score: float
    matched_name: str
    names: _containers.RepeatedScalarFieldContainer[str]
    iin_bin: str
    birth_date: str
    country: str
    reference: str
    def __init__(self, list_name: _Optional[str] = ..., version: _Optional[int] = ..., entry_ref: _Optional[str] = ..., kind: _Optional[str] = ..., outcome: _Optional[_Union[ScreeningOutcome, str]] = ..., basis: _Optional[str] = ..., score: _Optional[float] = ..., matched_name: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., iin_bin: _Optional[str] = ..., birth_date: _Optional[str] = ..., country: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class ScreeningResult(_message.Message):
    __slots__ = ("result_id", "outcome", "versions", "matches", "screened_at", "retain_until", "receipt", "client_ref")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    SCREENED_AT_FIELD_NUMBER: _ClassVar[int]
    RETAIN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REF_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    outcome: ScreeningOutcome
    versions: _containers.RepeatedCompositeFieldContainer[ListVersion]
    matches: _containers.RepeatedCompositeFieldContainer[ScreeningMatch]
    screened_at: str
    retain_until: str
    receipt: _common_pb2.AuditReceipt
    client_ref: str
    def __init__(self, result_id: _Optional[str] = ..., outcome: _Optional[_Union[ScreeningOutcome, str]] = ..., versions: _Optional[_Iterable[_Union[ListVersion, _Mapping]]] = ..., matches: _Optional[_Iterable[_Union[ScreeningMatch, _Mapping]]] = ..., screened_at: _Optional[str] = ..., retain_until: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ..., client_ref: _Optional[str] = ...) -> None: ...

class ReadOutboxRequest(_message.Message):
    __slots__ = ("include_read",)
    INCLUDE_READ_FIELD_NUMBER: _ClassVar[int]
    include_read: bool
    def __init__(self, include_read: _Optional[bool] = ...) -> None: ...

class ScreeningOutboxItem(_message.Message):
    __slots__ = ("id", "client_ref", "list_name", "version", "entry_ref", "outcome", "summary", "result_id", "created_at", "read_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REF_FIELD_NUMBER: _ClassVar[int]
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_REF_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    client_ref: str
    list_name: str
    version: int
    entry_ref: str
    outcome: ScreeningOutcome
    summary: str
    result_id: str
    created_at: str
    read_at: str
    def __init__(self, id: _Optional[int] = ..., client_ref: _Optional[str] = ..., list_name: _Optional[str] = ..., version: _Optional[int] = ..., entry_ref: _Optional[str] = ..., outcome: _Optional[_Union[ScreeningOutcome, str]] = ..., summary: _Optional[str] = ..., result_id: _Optional[str] = ..., created_at: _Optional[str] = ..., read_at: _Optional[str] = ...) -> None: ...

class ScreeningOutbox(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScreeningOutboxItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ScreeningOutboxItem, _Mapping]]] = ...) -> None: ...
