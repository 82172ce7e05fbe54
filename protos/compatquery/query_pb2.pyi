import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import duration_pb2 as _duration_pb2
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

class Shade(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHADE_UNSPECIFIED: _ClassVar[Shade]
    LIGHT: _ClassVar[Shade]
    DARK_BLUE: _ClassVar[Shade]
    PALE_GREEN: _ClassVar[Shade]
SHADE_UNSPECIFIED: Shade
LIGHT: Shade
DARK_BLUE: Shade
PALE_GREEN: Shade

class Note(_message.Message):
    __slots__ = ("text", "stars")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STARS_FIELD_NUMBER: _ClassVar[int]
    text: str
    stars: int
    def __init__(self, text: _Optional[str] = ..., stars: _Optional[int] = ...) -> None: ...

class Bag(_message.Message):
    __slots__ = ("f_double", "f_float", "f_int32", "f_int64", "f_uint32", "f_uint64", "f_sint32", "f_sint64", "f_fixed32", "f_fixed64", "f_sfixed32", "f_sfixed64", "f_bool", "f_string", "f_bytes", "shade", "maybe_text", "maybe_count", "maybe_shade", "maybe_flag", "words", "numbers", "shades", "blobs", "flags", "boxed_counts", "laps", "notes_list", "nested", "note", "pick_text", "pick_number", "pick_note", "at", "took", "mask", "meta", "any_json", "items", "w_double", "w_float", "w_int64", "w_uint64", "w_int32", "w_uint32", "w_bool", "w_string", "w_bytes", "tags", "sizes", "by_int32", "by_int64", "by_uint32", "by_uint64", "by_sint32", "by_fixed64", "by_bool", "totals", "counts32", "counts64", "ratios32", "ratios", "switches", "payloads", "shade_by_name", "boxed", "stamps", "spans", "notes", "search_encoded", "search_decoded", "dotted_name", "dashed_name")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ByInt32Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class ByInt64Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class ByUint32Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class ByUint64Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class BySint32Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class ByFixed64Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    class ByBoolEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: bool
        value: str
        def __init__(self, key: _Optional[bool] = ..., value: _Optional[str] = ...) -> None: ...
    class TotalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class Counts32Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class Counts64Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class Ratios32Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class RatiosEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SwitchesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class PayloadsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    class ShadeByNameEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Shade
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Shade, str]] = ...) -> None: ...
    class BoxedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _wrappers_pb2.UInt64Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_wrappers_pb2.UInt64Value, _Mapping]] = ...) -> None: ...
    class StampsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _timestamp_pb2.Timestamp
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    class SpansEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _duration_pb2.Duration
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
    class NotesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Note
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Note, _Mapping]] = ...) -> None: ...
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
    SHADE_FIELD_NUMBER: _ClassVar[int]
    MAYBE_TEXT_FIELD_NUMBER: _ClassVar[int]
    MAYBE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAYBE_SHADE_FIELD_NUMBER: _ClassVar[int]
    MAYBE_FLAG_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    SHADES_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    BOXED_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LAPS_FIELD_NUMBER: _ClassVar[int]
    NOTES_LIST_FIELD_NUMBER: _ClassVar[int]
    NESTED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    PICK_TEXT_FIELD_NUMBER: _ClassVar[int]
    PICK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PICK_NOTE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TOOK_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    ANY_JSON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    W_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    W_FLOAT_FIELD_NUMBER: _ClassVar[int]
    W_INT64_FIELD_NUMBER: _ClassVar[int]
    W_UINT64_FIELD_NUMBER: _ClassVar[int]
    W_INT32_FIELD_NUMBER: _ClassVar[int]
    W_UINT32_FIELD_NUMBER: _ClassVar[int]
    W_BOOL_FIELD_NUMBER: _ClassVar[int]
    W_STRING_FIELD_NUMBER: _ClassVar[int]
    W_BYTES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    BY_INT32_FIELD_NUMBER: _ClassVar[int]
    BY_INT64_FIELD_NUMBER: _ClassVar[int]
    BY_UINT32_FIELD_NUMBER: _ClassVar[int]
    BY_UINT64_FIELD_NUMBER: _ClassVar[int]
    BY_SINT32_FIELD_NUMBER: _ClassVar[int]
    BY_FIXED64_FIELD_NUMBER: _ClassVar[int]
    BY_BOOL_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    COUNTS32_FIELD_NUMBER: _ClassVar[int]
    COUNTS64_FIELD_NUMBER: _ClassVar[int]
    RATIOS32_FIELD_NUMBER: _ClassVar[int]
    RATIOS_FIELD_NUMBER: _ClassVar[int]
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    SHADE_BY_NAME_FIELD_NUMBER: _ClassVar[int]
    BOXED_FIELD_NUMBER: _ClassVar[int]
    STAMPS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_ENCODED_FIELD_NUMBER: _ClassVar[int]
    SEARCH_DECODED_FIELD_NUMBER: _ClassVar[int]
    DOTTED_NAME_FIELD_NUMBER: _ClassVar[int]
    DASHED_NAME_FIELD_NUMBER: _ClassVar[int]
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
    shade: Shade
    maybe_text: str
    maybe_count: int
    maybe_shade: Shade
    maybe_flag: bool
    words: _containers.RepeatedScalarFieldContainer[str]
    numbers: _containers.RepeatedScalarFieldContainer[int]
    shades: _containers.RepeatedScalarFieldContainer[Shade]
    blobs: _containers.RepeatedScalarFieldContainer[bytes]
    flags: _containers.RepeatedScalarFieldContainer[bool]
    boxed_counts: _containers.RepeatedCompositeFieldContainer[_wrappers_pb2.UInt64Value]
    laps: _containers.RepeatedCompositeFieldContainer[_duration_pb2.Duration]
    notes_list: _containers.RepeatedCompositeFieldContainer[Note]
    nested: Bag
    note: Note
    pick_text: str
    pick_number: int
    pick_note: Note
    at: _timestamp_pb2.Timestamp
    took: _duration_pb2.Duration
    mask: _field_mask_pb2.FieldMask
    meta: _struct_pb2.Struct
    any_json: _struct_pb2.Value
    items: _struct_pb2.ListValue
    w_double: _wrappers_pb2.DoubleValue
    w_float: _wrappers_pb2.FloatValue
    w_int64: _wrappers_pb2.Int64Value
    w_uint64: _wrappers_pb2.UInt64Value
    w_int32: _wrappers_pb2.Int32Value
    w_uint32: _wrappers_pb2.UInt32Value
    w_bool: _wrappers_pb2.BoolValue
    w_string: _wrappers_pb2.StringValue
    w_bytes: _wrappers_pb2.BytesValue
    tags: _containers.ScalarMap[str, str]
    sizes: _containers.ScalarMap[str, int]
    by_int32: _containers.ScalarMap[int, str]
    by_int64: _containers.ScalarMap[int, str]
    by_uint32: _containers.ScalarMap[int, str]
    by_uint64: _containers.ScalarMap[int, str]
    by_sint32: _containers.ScalarMap[int, str]
    by_fixed64: _containers.ScalarMap[int, str]
    by_bool: _containers.ScalarMap[bool, str]
    totals: _containers.ScalarMap[str, int]
    counts32: _containers.ScalarMap[str, int]
    counts64: _containers.ScalarMap[str, int]
    ratios32: _containers.ScalarMap[str, float]
    ratios: _containers.ScalarMap[str, float]
    switches: _containers.ScalarMap[str, bool]
    payloads: _containers.ScalarMap[str, bytes]
    shade_by_name: _containers.ScalarMap[str, Shade]
    boxed: _containers.MessageMap[str, _wrappers_pb2.UInt64Value]
    stamps: _containers.MessageMap[str, _timestamp_pb2.Timestamp]
    spans: _containers.MessageMap[str, _duration_pb2.Duration]
    notes: _containers.MessageMap[str, Note]
    search_encoded: str
    search_decoded: str
    dotted_name: str
    dashed_name: str
    def __init__(self, f_double: _Optional[float] = ..., f_float: _Optional[float] = ..., f_int32: _Optional[int] = ..., f_int64: _Optional[int] = ..., f_uint32: _Optional[int] = ..., f_uint64: _Optional[int] = ..., f_sint32: _Optional[int] = ..., f_sint64: _Optional[int] = ..., f_fixed32: _Optional[int] = ..., f_fixed64: _Optional[int] = ..., f_sfixed32: _Optional[int] = ..., f_sfixed64: _Optional[int] = ..., f_bool: _Optional[bool] = ..., f_string: _Optional[str] = ..., f_bytes: _Optional[bytes] = ..., shade: _Optional[_Union[Shade, str]] = ..., maybe_text: _Optional[str] = ..., maybe_count: _Optional[int] = ..., maybe_shade: _Optional[_Union[Shade, str]] = ..., maybe_flag: _Optional[bool] = ..., words: _Optional[_Iterable[str]] = ..., numbers: _Optional[_Iterable[int]] = ..., shades: _Optional[_Iterable[_Union[Shade, str]]] = ..., blobs: _Optional[_Iterable[bytes]] = ..., flags: _Optional[_Iterable[bool]] = ..., boxed_counts: _Optional[_Iterable[_Union[_wrappers_pb2.UInt64Value, _Mapping]]] = ..., laps: _Optional[_Iterable[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]]] = ..., notes_list: _Optional[_Iterable[_Union[Note, _Mapping]]] = ..., nested: _Optional[_Union[Bag, _Mapping]] = ..., note: _Optional[_Union[Note, _Mapping]] = ..., pick_text: _Optional[str] = ..., pick_number: _Optional[int] = ..., pick_note: _Optional[_Union[Note, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., took: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., meta: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., any_json: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., items: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., w_double: _Optional[_Union[_wrappers_pb2.DoubleValue, _Mapping]] = ..., w_float: _Optional[_Union[_wrappers_pb2.FloatValue, _Mapping]] = ..., w_int64: _Optional[_Union[_wrappers_pb2.Int64Value, _Mapping]] = ..., w_uint64: _Optional[_Union[_wrappers_pb2.UInt64Value, _Mapping]] = ..., w_int32: _Optional[_Union[_wrappers_pb2.Int32Value, _Mapping]] = ..., w_uint32: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., w_bool: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ..., w_string: _Optional[_Union[_wrappers_pb2.StringValue, _Mapping]] = ..., w_bytes: _Optional[_Union[_wrappers_pb2.BytesValue, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., sizes: _Optional[_Mapping[str, int]] = ..., by_int32: _Optional[_Mapping[int, str]] = ..., by_int64: _Optional[_Mapping[int, str]] = ..., by_uint32: _Optional[_Mapping[int, str]] = ..., by_uint64: _Optional[_Mapping[int, str]] = ..., by_sint32: _Optional[_Mapping[int, str]] = ..., by_fixed64: _Optional[_Mapping[int, str]] = ..., by_bool: _Optional[_Mapping[bool, str]] = ..., totals: _Optional[_Mapping[str, int]] = ..., counts32: _Optional[_Mapping[str, int]] = ..., counts64: _Optional[_Mapping[str, int]] = ..., ratios32: _Optional[_Mapping[str, float]] = ..., ratios: _Optional[_Mapping[str, float]] = ..., switches: _Optional[_Mapping[str, bool]] = ..., payloads: _Optional[_Mapping[str, bytes]] = ..., shade_by_name: _Optional[_Mapping[str, Shade]] = ..., boxed: _Optional[_Mapping[str, _wrappers_pb2.UInt64Value]] = ..., stamps: _Optional[_Mapping[str, _timestamp_pb2.Timestamp]] = ..., spans: _Optional[_Mapping[str, _duration_pb2.Duration]] = ..., notes: _Optional[_Mapping[str, Note]] = ..., search_encoded: _Optional[str] = ..., search_decoded: _Optional[str] = ..., dotted_name: _Optional[str] = ..., dashed_name: _Optional[str] = ...) -> None: ...

class Shelf(_message.Message):
    __slots__ = ("name", "theme", "size", "shade", "labels", "opened", "attrs", "motto", "note", "weight", "public")
    class AttrsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    THEME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHADE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    MOTTO_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    name: str
    theme: str
    size: int
    shade: Shade
    labels: _containers.RepeatedScalarFieldContainer[str]
    opened: _timestamp_pb2.Timestamp
    attrs: _containers.ScalarMap[str, str]
    motto: str
    note: Note
    weight: float
    public: bool
    def __init__(self, name: _Optional[str] = ..., theme: _Optional[str] = ..., size: _Optional[int] = ..., shade: _Optional[_Union[Shade, str]] = ..., labels: _Optional[_Iterable[str]] = ..., opened: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attrs: _Optional[_Mapping[str, str]] = ..., motto: _Optional[str] = ..., note: _Optional[_Union[Note, _Mapping]] = ..., weight: _Optional[float] = ..., public: _Optional[bool] = ...) -> None: ...

class ShelfRequest(_message.Message):
    __slots__ = ("parent", "shelf", "request_id", "page_size", "update_mask")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SHELF_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    parent: str
    shelf: Shelf
    request_id: str
    page_size: int
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, parent: _Optional[str] = ..., shelf: _Optional[_Union[Shelf, _Mapping]] = ..., request_id: _Optional[str] = ..., page_size: _Optional[int] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class Upload(_message.Message):
    __slots__ = ("bucket", "file", "overwrite")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    file: _httpbody_pb2.HttpBody
    overwrite: bool
    def __init__(self, bucket: _Optional[str] = ..., file: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., overwrite: _Optional[bool] = ...) -> None: ...
