import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
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

class Node(_message.Message):
    __slots__ = ("name", "children", "parent", "by_label", "update_time")
    class ByLabelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Node
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BY_LABEL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    children: _containers.RepeatedCompositeFieldContainer[Node]
    parent: Node
    by_label: _containers.MessageMap[str, Node]
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., children: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., parent: _Optional[_Union[Node, _Mapping]] = ..., by_label: _Optional[_Mapping[str, Node]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Tree(_message.Message):
    __slots__ = ("name", "root", "node_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    root: Node
    node_count: int
    def __init__(self, name: _Optional[str] = ..., root: _Optional[_Union[Node, _Mapping]] = ..., node_count: _Optional[int] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("name", "depth", "filter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    depth: int
    filter: Node
    def __init__(self, name: _Optional[str] = ..., depth: _Optional[int] = ..., filter: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class GetTreeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBlobRequest(_message.Message):
    __slots__ = ("tree", "path")
    TREE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    tree: str
    path: str
    def __init__(self, tree: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class PutBlobRequest(_message.Message):
    __slots__ = ("tree", "path", "content")
    TREE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    tree: str
    path: str
    content: _httpbody_pb2.HttpBody
    def __init__(self, tree: _Optional[str] = ..., path: _Optional[str] = ..., content: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class PurgeTreeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CountNodesRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CountNodesResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class WatchNodesRequest(_message.Message):
    __slots__ = ("name", "heartbeat")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    heartbeat: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., heartbeat: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RenameNodeRequest(_message.Message):
    __slots__ = ("node", "update_mask")
    NODE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    node: Node
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class Kinds(_message.Message):
    __slots__ = ("f_int32", "f_int64", "f_uint32", "f_uint64", "f_sint32", "f_sint64", "f_fixed32", "f_fixed64", "f_sfixed32", "f_sfixed64", "f_float", "f_double", "f_bool", "f_string", "f_bytes", "color", "ids", "colors", "counts", "inner_by_number", "inner", "inners", "choice_text", "choice_number", "maybe", "custom_named", "old_field", "at", "took", "mask", "struct_value", "any_json", "list_value", "any", "empty", "w_int64", "w_double", "w_bool", "w_string", "w_bytes", "w_int32", "w_uint32", "w_uint64", "w_float", "null_value", "times")
    class Color(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COLOR_UNSPECIFIED: _ClassVar[Kinds.Color]
        RED: _ClassVar[Kinds.Color]
        GREEN: _ClassVar[Kinds.Color]
    COLOR_UNSPECIFIED: Kinds.Color
    RED: Kinds.Color
    GREEN: Kinds.Color
    class Inner(_message.Message):
        __slots__ = ("note", "color", "again")
        NOTE_FIELD_NUMBER: _ClassVar[int]
        COLOR_FIELD_NUMBER: _ClassVar[int]
        AGAIN_FIELD_NUMBER: _ClassVar[int]
        note: str
        color: Kinds.Color
        again: Kinds.Inner
        def __init__(self, note: _Optional[str] = ..., color: _Optional[_Union[Kinds.Color, str]] = ..., again: _Optional[_Union[Kinds.Inner, _Mapping]] = ...) -> None: ...
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class InnerByNumberEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Kinds.Inner
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Kinds.Inner, _Mapping]] = ...) -> None: ...
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
    F_FLOAT_FIELD_NUMBER: _ClassVar[int]
    F_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    F_BOOL_FIELD_NUMBER: _ClassVar[int]
    F_STRING_FIELD_NUMBER: _ClassVar[int]
    F_BYTES_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    COLORS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    INNER_BY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INNER_FIELD_NUMBER: _ClassVar[int]
    INNERS_FIELD_NUMBER: _ClassVar[int]
    CHOICE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CHOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MAYBE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_NAMED_FIELD_NUMBER: _ClassVar[int]
    OLD_FIELD_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TOOK_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    STRUCT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ANY_JSON_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    W_INT64_FIELD_NUMBER: _ClassVar[int]
    W_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    W_BOOL_FIELD_NUMBER: _ClassVar[int]
    W_STRING_FIELD_NUMBER: _ClassVar[int]
    W_BYTES_FIELD_NUMBER: _ClassVar[int]
    W_INT32_FIELD_NUMBER: _ClassVar[int]
    W_UINT32_FIELD_NUMBER: _ClassVar[int]
    W_UINT64_FIELD_NUMBER: _ClassVar[int]
    W_FLOAT_FIELD_NUMBER: _ClassVar[int]
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
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
    f_float: float
    f_double: float
    f_bool: bool
    f_string: str
    f_bytes: bytes
    color: Kinds.Color
    ids: _containers.RepeatedScalarFieldContainer[int]
    colors: _containers.RepeatedScalarFieldContainer[Kinds.Color]
    counts: _containers.ScalarMap[str, int]
    inner_by_number: _containers.MessageMap[int, Kinds.Inner]
    inner: Kinds.Inner
    inners: _containers.RepeatedCompositeFieldContainer[Kinds.Inner]
    choice_text: str
    choice_number: int
    maybe: str
    custom_named: str
    old_field: str
    at: _timestamp_pb2.Timestamp
    took: _duration_pb2.Duration
    mask: _field_mask_pb2.FieldMask
    struct_value: _struct_pb2.Struct
    any_json: _struct_pb2.Value
    list_value: _struct_pb2.ListValue
    any: _any_pb2.Any
    empty: _empty_pb2.Empty
    w_int64: _wrappers_pb2.Int64Value
    w_double: _wrappers_pb2.DoubleValue
    w_bool: _wrappers_pb2.BoolValue
    w_string: _wrappers_pb2.StringValue
    w_bytes: _wrappers_pb2.BytesValue
    w_int32: _wrappers_pb2.Int32Value
    w_uint32: _wrappers_pb2.UInt32Value
    w_uint64: _wrappers_pb2.UInt64Value
    w_float: _wrappers_pb2.FloatValue
    null_value: _struct_pb2.NullValue
    times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, f_int32: _Optional[int] = ..., f_int64: _Optional[int] = ..., f_uint32: _Optional[int] = ..., f_uint64: _Optional[int] = ..., f_sint32: _Optional[int] = ..., f_sint64: _Optional[int] = ..., f_fixed32: _Optional[int] = ..., f_fixed64: _Optional[int] = ..., f_sfixed32: _Optional[int] = ..., f_sfixed64: _Optional[int] = ..., f_float: _Optional[float] = ..., f_double: _Optional[float] = ..., f_bool: _Optional[bool] = ..., f_string: _Optional[str] = ..., f_bytes: _Optional[bytes] = ..., color: _Optional[_Union[Kinds.Color, str]] = ..., ids: _Optional[_Iterable[int]] = ..., colors: _Optional[_Iterable[_Union[Kinds.Color, str]]] = ..., counts: _Optional[_Mapping[str, int]] = ..., inner_by_number: _Optional[_Mapping[int, Kinds.Inner]] = ..., inner: _Optional[_Union[Kinds.Inner, _Mapping]] = ..., inners: _Optional[_Iterable[_Union[Kinds.Inner, _Mapping]]] = ..., choice_text: _Optional[str] = ..., choice_number: _Optional[int] = ..., maybe: _Optional[str] = ..., custom_named: _Optional[str] = ..., old_field: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., took: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., struct_value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., any_json: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., list_value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., any: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., empty: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., w_int64: _Optional[_Union[_wrappers_pb2.Int64Value, _Mapping]] = ..., w_double: _Optional[_Union[_wrappers_pb2.DoubleValue, _Mapping]] = ..., w_bool: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ..., w_string: _Optional[_Union[_wrappers_pb2.StringValue, _Mapping]] = ..., w_bytes: _Optional[_Union[_wrappers_pb2.BytesValue, _Mapping]] = ..., w_int32: _Optional[_Union[_wrappers_pb2.Int32Value, _Mapping]] = ..., w_uint32: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., w_uint64: _Optional[_Union[_wrappers_pb2.UInt64Value, _Mapping]] = ..., w_float: _Optional[_Union[_wrappers_pb2.FloatValue, _Mapping]] = ..., null_value: _Optional[_Union[_struct_pb2.NullValue, str]] = ..., times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...
