from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_MODE_UNSPECIFIED: _ClassVar[AuthMode]
    AUTH_MODE_REQUIRED: _ClassVar[AuthMode]
    AUTH_MODE_OPTIONAL: _ClassVar[AuthMode]
    AUTH_MODE_NONE: _ClassVar[AuthMode]

class RateLimitKey(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_LIMIT_KEY_UNSPECIFIED: _ClassVar[RateLimitKey]
    RATE_LIMIT_KEY_PRINCIPAL: _ClassVar[RateLimitKey]
    RATE_LIMIT_KEY_IP: _ClassVar[RateLimitKey]
    RATE_LIMIT_KEY_GLOBAL: _ClassVar[RateLimitKey]
AUTH_MODE_UNSPECIFIED: AuthMode
AUTH_MODE_REQUIRED: AuthMode
AUTH_MODE_OPTIONAL: AuthMode
AUTH_MODE_NONE: AuthMode
RATE_LIMIT_KEY_UNSPECIFIED: RateLimitKey
RATE_LIMIT_KEY_PRINCIPAL: RateLimitKey
RATE_LIMIT_KEY_IP: RateLimitKey
RATE_LIMIT_KEY_GLOBAL: RateLimitKey
METHOD_POLICY_FIELD_NUMBER: _ClassVar[int]
method_policy: _descriptor.FieldDescriptor
SERVICE_POLICY_FIELD_NUMBER: _ClassVar[int]
service_policy: _descriptor.FieldDescriptor

class AuthRule(_message.Message):
    __slots__ = ("mode", "scopes_all_of", "scopes_any_of")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCOPES_ALL_OF_FIELD_NUMBER: _ClassVar[int]
    SCOPES_ANY_OF_FIELD_NUMBER: _ClassVar[int]
    mode: AuthMode
    scopes_all_of: _containers.RepeatedScalarFieldContainer[str]
    scopes_any_of: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, mode: _Optional[_Union[AuthMode, str]] = ..., scopes_all_of: _Optional[_Iterable[str]] = ..., scopes_any_of: _Optional[_Iterable[str]] = ...) -> None: ...

class MethodPolicy(_message.Message):
    __slots__ = ("auth", "rate_limits")
    AUTH_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    auth: AuthRule
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimitRule]
    def __init__(self, auth: _Optional[_Union[AuthRule, _Mapping]] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimitRule, _Mapping]]] = ...) -> None: ...

class RateLimitRule(_message.Message):
    __slots__ = ("name", "limit", "window_seconds", "key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    window_seconds: int
    key: RateLimitKey
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ..., window_seconds: _Optional[int] = ..., key: _Optional[_Union[RateLimitKey, str]] = ...) -> None: ...
