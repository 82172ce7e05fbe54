import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import any_pb2 as _any_pb2
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

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    ACTIVE: _ClassVar[Status]
    ARCHIVED: _ClassVar[Status]
STATUS_UNSPECIFIED: Status
ACTIVE: Status
ARCHIVED: Status

class Bio(_message.Message):
    __slots__ = ("year_born", "year_died", "text")
    YEAR_BORN_FIELD_NUMBER: _ClassVar[int]
    YEAR_DIED_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    year_born: int
    year_died: int
    text: str
    def __init__(self, year_born: _Optional[int] = ..., year_died: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class Author(_message.Message):
    __slots__ = ("first_name", "last_name", "bio")
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    BIO_FIELD_NUMBER: _ClassVar[int]
    first_name: str
    last_name: str
    bio: Bio
    def __init__(self, first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., bio: _Optional[_Union[Bio, _Mapping]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("name", "title", "page_count", "price_cents", "status", "tags", "history", "author", "editors", "authors_by_role", "status_by_region", "labels_by_id", "source_url", "source_author", "rating", "extra", "attributes", "create_time", "edition", "in_print", "score", "checksum", "display_name")
    class AuthorsByRoleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Author
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Author, _Mapping]] = ...) -> None: ...
    class StatusByRegionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Status
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Status, str]] = ...) -> None: ...
    class LabelsByIdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    EDITORS_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_BY_ROLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_BY_REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_BY_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_AUTHOR_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EDITION_FIELD_NUMBER: _ClassVar[int]
    IN_PRINT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    page_count: int
    price_cents: int
    status: Status
    tags: _containers.RepeatedScalarFieldContainer[str]
    history: _containers.RepeatedScalarFieldContainer[Status]
    author: Author
    editors: _containers.RepeatedCompositeFieldContainer[Author]
    authors_by_role: _containers.MessageMap[str, Author]
    status_by_region: _containers.ScalarMap[str, Status]
    labels_by_id: _containers.ScalarMap[int, str]
    source_url: str
    source_author: Author
    rating: int
    extra: _any_pb2.Any
    attributes: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    edition: _wrappers_pb2.Int32Value
    in_print: bool
    score: float
    checksum: bytes
    display_name: str
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., page_count: _Optional[int] = ..., price_cents: _Optional[int] = ..., status: _Optional[_Union[Status, str]] = ..., tags: _Optional[_Iterable[str]] = ..., history: _Optional[_Iterable[_Union[Status, str]]] = ..., author: _Optional[_Union[Author, _Mapping]] = ..., editors: _Optional[_Iterable[_Union[Author, _Mapping]]] = ..., authors_by_role: _Optional[_Mapping[str, Author]] = ..., status_by_region: _Optional[_Mapping[str, Status]] = ..., labels_by_id: _Optional[_Mapping[int, str]] = ..., source_url: _Optional[str] = ..., source_author: _Optional[_Union[Author, _Mapping]] = ..., rating: _Optional[int] = ..., extra: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., edition: _Optional[_Union[_wrappers_pb2.Int32Value, _Mapping]] = ..., in_print: _Optional[bool] = ..., score: _Optional[float] = ..., checksum: _Optional[bytes] = ..., display_name: _Optional[str] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("shelf", "record", "tags", "theme", "records", "status")
    SHELF_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    THEME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    shelf: int
    record: Record
    tags: _containers.RepeatedScalarFieldContainer[str]
    theme: str
    records: _containers.RepeatedCompositeFieldContainer[Record]
    status: Status
    def __init__(self, shelf: _Optional[int] = ..., record: _Optional[_Union[Record, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., theme: _Optional[str] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., status: _Optional[_Union[Status, str]] = ...) -> None: ...
