from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Bound(_message.Message):
    __slots__ = ("name", "b", "x", "y", "id", "tag", "path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    b: str
    x: str
    y: str
    id: str
    tag: str
    path: str
    def __init__(self, name: _Optional[str] = ..., b: _Optional[str] = ..., x: _Optional[str] = ..., y: _Optional[str] = ..., id: _Optional[str] = ..., tag: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...
