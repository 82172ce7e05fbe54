import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from edge import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Genre(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENRE_UNSPECIFIED: _ClassVar[Genre]
    FICTION: _ClassVar[Genre]
    NON_FICTION: _ClassVar[Genre]
    SCIENCE_FICTION: _ClassVar[Genre]
    FANTASY: _ClassVar[Genre]
    MYSTERY: _ClassVar[Genre]
    BIOGRAPHY: _ClassVar[Genre]
    HISTORY: _ClassVar[Genre]
    POETRY: _ClassVar[Genre]
GENRE_UNSPECIFIED: Genre
FICTION: Genre
NON_FICTION: Genre
SCIENCE_FICTION: Genre
FANTASY: Genre
MYSTERY: Genre
BIOGRAPHY: Genre
HISTORY: Genre
POETRY: Genre

class Shelf(_message.Message):
    __slots__ = ("name", "theme", "create_time", "archived")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THEME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    name: str
    theme: str
    create_time: _timestamp_pb2.Timestamp
    archived: bool
    def __init__(self, name: _Optional[str] = ..., theme: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archived: _Optional[bool] = ...) -> None: ...

class Book(_message.Message):
    __slots__ = ("name", "title", "author", "page_count", "isbn", "price_cents", "genre", "tags", "publish_time", "read_duration")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ISBN_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    READ_DURATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    author: str
    page_count: int
    isbn: str
    price_cents: int
    genre: Genre
    tags: _containers.RepeatedScalarFieldContainer[str]
    publish_time: _timestamp_pb2.Timestamp
    read_duration: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., author: _Optional[str] = ..., page_count: _Optional[int] = ..., isbn: _Optional[str] = ..., price_cents: _Optional[int] = ..., genre: _Optional[_Union[Genre, str]] = ..., tags: _Optional[_Iterable[str]] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., read_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListShelvesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListShelvesResponse(_message.Message):
    __slots__ = ("shelves", "next_page_token")
    SHELVES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shelves: _containers.RepeatedCompositeFieldContainer[Shelf]
    next_page_token: str
    def __init__(self, shelves: _Optional[_Iterable[_Union[Shelf, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetShelfRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CheckShelfRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateShelfRequest(_message.Message):
    __slots__ = ("shelf", "shelf_id")
    SHELF_FIELD_NUMBER: _ClassVar[int]
    SHELF_ID_FIELD_NUMBER: _ClassVar[int]
    shelf: Shelf
    shelf_id: str
    def __init__(self, shelf: _Optional[_Union[Shelf, _Mapping]] = ..., shelf_id: _Optional[str] = ...) -> None: ...

class DeleteShelfRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class ArchiveShelfRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBooksRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "author", "genre")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    author: str
    genre: Genre
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., author: _Optional[str] = ..., genre: _Optional[_Union[Genre, str]] = ...) -> None: ...

class ListBooksResponse(_message.Message):
    __slots__ = ("books", "next_page_token")
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Book]
    next_page_token: str
    def __init__(self, books: _Optional[_Iterable[_Union[Book, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("name", "book_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    book_id: str
    def __init__(self, name: _Optional[str] = ..., book_id: _Optional[str] = ...) -> None: ...

class CreateBookRequest(_message.Message):
    __slots__ = ("parent", "book", "book_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BOOK_FIELD_NUMBER: _ClassVar[int]
    BOOK_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    book: Book
    book_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., book: _Optional[_Union[Book, _Mapping]] = ..., book_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateBookRequest(_message.Message):
    __slots__ = ("book", "update_mask")
    BOOK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    book: Book
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, book: _Optional[_Union[Book, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class SearchBooksRequest(_message.Message):
    __slots__ = ("q", "page_size")
    Q_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    q: str
    page_size: int
    def __init__(self, q: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class SearchBooksResponse(_message.Message):
    __slots__ = ("books",)
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Book]
    def __init__(self, books: _Optional[_Iterable[_Union[Book, _Mapping]]] = ...) -> None: ...

class MoveBookRequest(_message.Message):
    __slots__ = ("name", "other_shelf_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OTHER_SHELF_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    other_shelf_name: str
    def __init__(self, name: _Optional[str] = ..., other_shelf_name: _Optional[str] = ...) -> None: ...

class StreamBooksRequest(_message.Message):
    __slots__ = ("parent", "delay_ms")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    delay_ms: int
    def __init__(self, parent: _Optional[str] = ..., delay_ms: _Optional[int] = ...) -> None: ...

class ImportBooksRequest(_message.Message):
    __slots__ = ("parent", "book")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BOOK_FIELD_NUMBER: _ClassVar[int]
    parent: str
    book: Book
    def __init__(self, parent: _Optional[str] = ..., book: _Optional[_Union[Book, _Mapping]] = ...) -> None: ...

class ImportBooksResponse(_message.Message):
    __slots__ = ("imported_count", "names")
    IMPORTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    imported_count: int
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, imported_count: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetBookCoverRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
