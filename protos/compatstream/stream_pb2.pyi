from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Note(_message.Message):
    __slots__ = ("topic", "seq", "labels", "text", "inner")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INNER_FIELD_NUMBER: _ClassVar[int]
    topic: str
    seq: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    text: str
    inner: Note
    def __init__(self, topic: _Optional[str] = ..., seq: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., inner: _Optional[_Union[Note, _Mapping]] = ...) -> None: ...
