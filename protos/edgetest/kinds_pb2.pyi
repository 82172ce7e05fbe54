import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Color(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_UNSPECIFIED: _ClassVar[Color]
    RED: _ClassVar[Color]
    GREEN: _ClassVar[Color]
    BLUE: _ClassVar[Color]
COLOR_UNSPECIFIED: Color
RED: Color
GREEN: Color
BLUE: Color

class Inner(_message.Message):
    __slots__ = ("name", "count", "color", "child", "tags", "when")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    color: Color
    child: Inner
    tags: _containers.RepeatedScalarFieldContainer[str]
    when: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ..., color: _Optional[_Union[Color, str]] = ..., child: _Optional[_Union[Inner, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., when: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Kinds(_message.Message):
    __slots__ = ("f_double", "f_float", "f_int32", "f_int64", "f_uint32", "f_uint64", "f_sint32", "f_sint64", "f_fixed32", "f_fixed64", "f_sfixed32", "f_sfixed64", "f_bool", "f_string", "f_bytes", "color", "opt_int32", "json_named", "inner", "ids", "tags", "colors", "items", "blobs", "ratios", "labels", "inner_by_id", "choice_name", "choice_id", "choice_inner", "ts", "dur", "update_mask", "w_int32", "w_int64", "w_uint32", "w_uint64", "w_float", "w_double", "w_bool", "w_string", "w_bytes", "st", "val", "list_val", "any", "empty", "times", "masks", "w_int64s")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InnerByIdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Inner
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Inner, _Mapping]] = ...) -> None: ...
    F_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    F_FLOAT_FIELD_NUMBER: _ClassVar[int]
    F_INT32_FIELD_NUMBER: _ClassVar[int]
    F_INT64_FIELD_NUMBER: _ClassVar[int]
    F_UINT32_FIELD_NUMBER: _ClassVar[int]
    F_UINT64_FIELD_NUMBER: _ClassVar[int]
    F_SINT32_FIELD_NUMBER: _ClassVar[int]
    F_SINT64_FIELD_NUMBER: _ClassVar[int]
    F_FIXED32_FIELD_NUMBER: _ClassVar[int]
    F_FIXED64_FIELD_NUMBER: _ClassVar[int]
    F_SFIXED32_FIELD_NUMBER: _ClassVar[int]
    F_SFIXED64_FIELD_NUMBER: _ClassVar[int]
    F_BOOL_FIELD_NUMBER: _ClassVar[int]
    F_STRING_FIELD_NUMBER: _ClassVar[int]
    F_BYTES_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    OPT_INT32_FIELD_NUMBER: _ClassVar[int]
    JSON_NAMED_FIELD_NUMBER: _ClassVar[int]
    INNER_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    COLORS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    RATIOS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INNER_BY_ID_FIELD_NUMBER: _ClassVar[int]
    CHOICE_NAME_FIELD_NUMBER: _ClassVar[int]
    CHOICE_ID_FIELD_NUMBER: _ClassVar[int]
    CHOICE_INNER_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    DUR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    W_INT32_FIELD_NUMBER: _ClassVar[int]
    W_INT64_FIELD_NUMBER: _ClassVar[int]
    W_UINT32_FIELD_NUMBER: _ClassVar[int]
    W_UINT64_FIELD_NUMBER: _ClassVar[int]
    W_FLOAT_FIELD_NUMBER: _ClassVar[int]
    W_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    W_BOOL_FIELD_NUMBER: _ClassVar[int]
    W_STRING_FIELD_NUMBER: _ClassVar[int]
    W_BYTES_FIELD_NUMBER: _ClassVar[int]
    ST_FIELD_NUMBER: _ClassVar[int]
    VAL_FIELD_NUMBER: _ClassVar[int]
    LIST_VAL_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    W_INT64S_FIELD_NUMBER: _ClassVar[int]
    f_double: float
    f_float: float
    f_int32: int
    f_int64: int
    f_uint32: int
    f_uint64: int
    f_sint32: int
    f_sint64: int
    f_fixed32: int
    f_fixed64: int
    f_sfixed32: int
    f_sfixed64: int
    f_bool: bool
    f_string: str
    f_bytes: bytes
    color: Color
    opt_int32: int
    json_named: str
    inner: Inner
    ids: _containers.RepeatedScalarFieldContainer[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    colors: _containers.RepeatedScalarFieldContainer[Color]
    items: _containers.RepeatedCompositeFieldContainer[Inner]
    blobs: _containers.RepeatedScalarFieldContainer[bytes]
    ratios: _containers.RepeatedScalarFieldContainer[float]
    labels: _containers.ScalarMap[str, str]
    inner_by_id: _containers.MessageMap[int, Inner]
    choice_name: str
    choice_id: int
    choice_inner: Inner
    ts: _timestamp_pb2.Timestamp
    dur: _duration_pb2.Duration
    update_mask: _field_mask_pb2.FieldMask
    w_int32: _wrappers_pb2.Int32Value
    w_int64: _wrappers_pb2.Int64Value
    w_uint32: _wrappers_pb2.UInt32Value
    w_uint64: _wrappers_pb2.UInt64Value
    w_float: _wrappers_pb2.FloatValue
    w_double: _wrappers_pb2.DoubleValue
    w_bool: _wrappers_pb2.BoolValue
    w_string: _wrappers_pb2.StringValue
    w_bytes: _wrappers_pb2.BytesValue
    st: _struct_pb2.Struct
    val: _struct_pb2.Value
    list_val: _struct_pb2.ListValue
    any: _any_pb2.Any
    empty: _empty_pb2.Empty
    times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    masks: _containers.RepeatedCompositeFieldContainer[_field_mask_pb2.FieldMask]
    w_int64s: _containers.RepeatedCompositeFieldContainer[_wrappers_pb2.Int64Value]
    def __init__(self, f_double: _Optional[float] = ..., f_float: _Optional[float] = ..., f_int32: _Optional[int] = ..., f_int64: _Optional[int] = ..., f_uint32: _Optional[int] = ..., f_uint64: _Optional[int] = ..., f_sint32: _Optional[int] = ..., f_sint64: _Optional[int] = ..., f_fixed32: _Optional[int] = ..., f_fixed64: _Optional[int] = ..., f_sfixed32: _Optional[int] = ..., f_sfixed64: _Optional[int] = ..., f_bool: _Optional[bool] = ..., f_string: _Optional[str] = ..., f_bytes: _Optional[bytes] = ..., color: _Optional[_Union[Color, str]] = ..., opt_int32: _Optional[int] = ..., json_named: _Optional[str] = ..., inner: _Optional[_Union[Inner, _Mapping]] = ..., ids: _Optional[_Iterable[int]] = ..., tags: _Optional[_Iterable[str]] = ..., colors: _Optional[_Iterable[_Union[Color, str]]] = ..., items: _Optional[_Iterable[_Union[Inner, _Mapping]]] = ..., blobs: _Optional[_Iterable[bytes]] = ..., ratios: _Optional[_Iterable[float]] = ..., labels: _Optional[_Mapping[str, str]] = ..., inner_by_id: _Optional[_Mapping[int, Inner]] = ..., choice_name: _Optional[str] = ..., choice_id: _Optional[int] = ..., choice_inner: _Optional[_Union[Inner, _Mapping]] = ..., ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dur: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., w_int32: _Optional[_Union[_wrappers_pb2.Int32Value, _Mapping]] = ..., w_int64: _Optional[_Union[_wrappers_pb2.Int64Value, _Mapping]] = ..., w_uint32: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., w_uint64: _Optional[_Union[_wrappers_pb2.UInt64Value, _Mapping]] = ..., w_float: _Optional[_Union[_wrappers_pb2.FloatValue, _Mapping]] = ..., w_double: _Optional[_Union[_wrappers_pb2.DoubleValue, _Mapping]] = ..., w_bool: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ..., w_string: _Optional[_Union[_wrappers_pb2.StringValue, _Mapping]] = ..., w_bytes: _Optional[_Union[_wrappers_pb2.BytesValue, _Mapping]] = ..., st: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., val: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., list_val: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., any: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., empty: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., masks: _Optional[_Iterable[_Union[_field_mask_pb2.FieldMask, _Mapping]]] = ..., w_int64s: _Optional[_Iterable[_Union[_wrappers_pb2.Int64Value, _Mapping]]] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("bucket", "name", "file", "overwrite")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    name: str
    file: _httpbody_pb2.HttpBody
    overwrite: bool
    def __init__(self, bucket: _Optional[str] = ..., name: _Optional[str] = ..., file: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class DownloadReply(_message.Message):
    __slots__ = ("etag", "content")
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    etag: str
    content: _httpbody_pb2.HttpBody
    def __init__(self, etag: _Optional[str] = ..., content: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("items", "next_page_token", "total")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Inner]
    next_page_token: str
    total: int
    def __init__(self, items: _Optional[_Iterable[_Union[Inner, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...
