from google.protobuf import struct_pb2 as _struct_pb2
from siogw_api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Query(_message.Message):
    __slots__ = ("request_id", "resource", "parameters", "basis", "task_ref", "justification", "created_at")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    TASK_REF_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    resource: int
    parameters: _containers.ScalarMap[str, str]
    basis: str
    task_ref: str
    justification: str
    created_at: str
    def __init__(self, request_id: _Optional[str] = ..., resource: _Optional[int] = ..., parameters: _Optional[_Mapping[str, str]] = ..., basis: _Optional[str] = ..., task_ref: _Optional[str] = ..., justification: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("request_id", "resource", "resource_name", "access_right", "truncated", "data", "produced_at", "request_digest")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RIGHT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    resource: int
    resource_name: str
    access_right: str
    truncated: bool
    data: _struct_pb2.Struct
    produced_at: str
    request_digest: bytes
    def __init__(self, request_id: _Optional[str] = ..., resource: _Optional[int] = ..., resource_name: _Optional[str] = ..., access_right: _Optional[str] = ..., truncated: _Optional[bool] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., produced_at: _Optional[str] = ..., request_digest: _Optional[bytes] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("result", "receipt")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    result: _common_pb2.Envelope
    receipt: _common_pb2.AuditReceipt
    def __init__(self, result: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class ListResourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Resource(_message.Message):
    __slots__ = ("number", "name", "access_right", "parameters")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCESS_RIGHT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    number: int
    name: str
    access_right: str
    parameters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, number: _Optional[int] = ..., name: _Optional[str] = ..., access_right: _Optional[str] = ..., parameters: _Optional[_Iterable[str]] = ...) -> None: ...

class ListResourcesResponse(_message.Message):
    __slots__ = ("resources",)
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    def __init__(self, resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ...) -> None: ...

class GetServiceStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("serving", "now", "current", "windows", "reason")
    SERVING_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    serving: bool
    now: str
    current: _common_pb2.MaintenanceWindow
    windows: _containers.RepeatedCompositeFieldContainer[_common_pb2.MaintenanceWindow]
    reason: str
    def __init__(self, serving: _Optional[bool] = ..., now: _Optional[str] = ..., current: _Optional[_Union[_common_pb2.MaintenanceWindow, _Mapping]] = ..., windows: _Optional[_Iterable[_Union[_common_pb2.MaintenanceWindow, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...
