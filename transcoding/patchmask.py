"""A PATCH's update mask from the fields its JSON body sent (grpc-gateway's PATCH feature).

grpc-gateway (`allow_patch_feature`, on by default) fills the request's FieldMask
when a PATCH leaves it empty: its paths are the fields the body named, so
``PATCH /v1/shelves/1/books/2 {"title": "x"}`` changes the title and nothing else.
Without it the backend gets no mask, which AIP-134 reads as "every populated
field" and many backends as "replace the whole resource": a client written
against grpc-gateway would erase what it did not send, and a field sent with its
zero value (`""`, `0`, `false`) would not be updated at all. Envoy's transcoder
does not do it; the `patch_update_mask` option (transcoding/options.py) decides.

When (as grpc-gateway's generator decides): the route's HTTP method is PATCH,
its body names one message field (not ``*``), and the request message has
exactly one ``google.protobuf.FieldMask`` field, which is singular. The mask is
filled only when the path and the query left it without paths (an explicit
``?updateMask=title`` stands); with no body it is set, empty.

Paths (grpc-gateway's `runtime.FieldMaskFromRequestBody`): each JSON key, by its
proto or JSON name, becomes its proto name under its parent's path; an object
under a message field is walked into, and an empty one (or `null`, or a value
with a JSON form of its own, like a Timestamp) is the field itself; a repeated
or map field is one path, never walked into; a `Struct` or `Value` field is
walked by its JSON object's keys; an `Any` is one path and must carry `@type`;
a key naming no field is a 400 (the mask must not leave out what was sent).
Paths come sorted.
"""
from __future__ import annotations

from collections import deque
from functools import lru_cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .errors import BadRequest
from .jsonbody import join_path

__all__ = ["FIELD_MASK", "mask_field", "paths_from_body"]

FIELD_MASK = "google.protobuf.FieldMask"
_DYNAMIC = frozenset({"google.protobuf.Struct", "google.protobuf.Value"})
_ANY = "google.protobuf.Any"


def mask_field(input_type: Descriptor) -> FieldDescriptor | None:
    """The request's one FieldMask field (singular), or None when it has none or several."""
    masks = [f for f in input_type.fields if f.message_type is not None and f.message_type.full_name == FIELD_MASK]
    if len(masks) != 1 or masks[0].is_repeated:
        return None
    return masks[0]


@lru_cache(maxsize=1024)
def _json_names(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in descriptor.fields}


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(key) or _json_names(descriptor).get(key)


def paths_from_body(value: dict[str, Any], descriptor: Descriptor, prefix: str = "") -> list[str]:
    """The mask paths of a body object decoded into a `descriptor` message.
    `prefix` names the body in a BadRequest's field path (the body field)."""
    paths: list[str] = []
    queue: deque[tuple[str, Any, Descriptor | None]] = deque([("", value, descriptor)])
    while queue:
        path, node, message = queue.popleft()
        if type(node) is dict and node:
            if message is None:
                raise BadRequest(f"field {path!r} is not a message; its JSON value cannot be an object",
                                 field=join_path(prefix, path))
            for key, child in node.items():
                f = _field(message, key)
                if f is None:
                    raise BadRequest(f"no field {key!r} in {message.full_name}: a PATCH's update mask is made of "
                                     f"the fields its body names", field=join_path(prefix, join_path(path, key)))
                name = join_path(path, f.name)
                child_type = f.message_type
                repeated = f.is_repeated
                if child_type is not None and child_type.full_name in _DYNAMIC and not repeated:
                    paths.extend(_blind(name, child))
                elif child_type is not None and child_type.full_name == _ANY and not repeated:
                    if type(child) is not dict or "@type" not in child:
                        raise BadRequest(f"field {name!r} is a google.protobuf.Any without '@type'",
                                         field=join_path(prefix, name))
                    paths.append(name)
                elif repeated:
                    paths.append(name)  # a list or a map is replaced whole: the mask ends at it
                else:
                    queue.append((name, child, child_type))
        elif path:
            paths.append(path)
    return sorted(paths)


def _blind(name: str, value: Any) -> list[str]:
    """Struct and Value have no fields to check: their JSON objects' keys are the paths."""
    if type(value) is not dict:
        return [name]
    paths: list[str] = []
    queue: deque[tuple[str, dict[str, Any]]] = deque([(name, value)])
    while queue:
        path, node = queue.popleft()
        for key, child in node.items():
            if type(child) is dict:
                queue.append((f"{path}.{key}", child))
            else:
                paths.append(f"{path}.{key}")
    return paths

