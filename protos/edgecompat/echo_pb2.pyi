from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Item(_message.Message):
    __slots__ = ("name", "id", "tags", "child")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    child: Item
    def __init__(self, name: _Optional[str] = ..., id: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., child: _Optional[_Union[Item, _Mapping]] = ...) -> None: ...
