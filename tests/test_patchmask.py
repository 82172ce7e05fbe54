"""A PATCH's update mask from the fields its JSON body named (transcoding/patchmask.py):
grpc-gateway's PATCH feature, as its runtime.FieldMaskFromRequestBody computes the paths,
and when the codec fills the mask (`patch_update_mask`, PATCH, one FieldMask, a body field)."""
from __future__ import annotations

import json

import pytest

from edgedemo import library_pb2 as lib
from tests.support.kinds import pool_types
from transcoding.codec import RequestCodec
from transcoding.errors import BadRequest
from transcoding.options import profile
from transcoding.patchmask import mask_field, paths_from_body

KINDS = pool_types().Kinds.DESCRIPTOR

# (body of a Kinds message, the mask's paths): one row per rule of the walk
PATHS = [
    ({"fString": "x"}, ["f_string"]),  # JSON names become proto names
    ({"fString": ""}, ["f_string"]),  # a zero value is still named: it is updated
    ({"fInt32": 0, "fBool": False}, ["f_bool", "f_int32"]),  # sorted
    ({"customName": "x"}, ["json_named"]),  # a json_name of its own
    ({"inner": {"name": "a", "when": "2024-01-01T00:00:00Z"}}, ["inner.name", "inner.when"]),
    ({"inner": {}}, ["inner"]),  # an empty object is the field itself
    ({"inner": None}, ["inner"]),
    ({"ts": "2024-01-01T00:00:00Z"}, ["ts"]),  # a value with a JSON form of its own is a leaf
    ({"wInt32": 5}, ["w_int32"]),  # JSON names become proto names
    ({"w_int32": 5}, ["w_int32"]),
    ({"tags": ["a"], "items": [{"name": "b"}]}, ["items", "tags"]),  # lists are never walked into
    ({"labels": {"k": "v"}, "innerById": {"1": {"name": "c"}}}, ["inner_by_id", "labels"]),  # nor maps
    ({"st": {"a": 1, "b": {"c": 2, "d": {}}}}, ["st.a", "st.b.c"]),  # Struct: its keys, blindly
    ({"st": {}}, []),  # as grpc-gateway: an empty Struct names nothing
    ({"val": "text"}, ["val"]),
    ({"listVal": [1, 2]}, ["list_val"]),
    ({"any": {"@type": "type.googleapis.com/google.protobuf.Empty"}}, ["any"]),
    ({"inner": {"child": {"name": "deep"}, "count": 1}}, ["inner.child.name", "inner.count"]),
    ({}, []),
]


@pytest.mark.parametrize("body,paths", PATHS, ids=[json.dumps(b) for b, _ in PATHS])
def test_paths_from_body(body, paths):
    assert paths_from_body(body, KINDS) == paths


@pytest.mark.parametrize("body,field", [
    ({"nope": 1}, "book.nope"),
    ({"inner": {"nope": 1}}, "book.inner.nope"),
    ({"any": {"value": "x"}}, "book.any"),
    ({"fString": {"a": 1}}, "book.f_string"),
])
def test_what_cannot_be_a_mask_is_a_400_naming_the_field(body, field):
    with pytest.raises(BadRequest) as caught:
        paths_from_body(body, KINDS, "book")
    assert caught.value.field == field


def test_the_mask_field_is_the_one_singular_field_mask():
    assert mask_field(lib.UpdateBookRequest.DESCRIPTOR).name == "update_mask"
    assert mask_field(KINDS) is None  # a singular and a repeated FieldMask: two, so none (grpc-gateway)
    assert mask_field(lib.CreateBookRequest.DESCRIPTOR) is None


def _codec(name: str = "edge", method: str = "PATCH", body: str = "book") -> RequestCodec:
    return RequestCodec(lib.UpdateBookRequest.DESCRIPTOR, body, ["book.name"], options=profile(name),
                        http_method=method)


PATH = [(("book", "name"), "shelves/scifi/books/dune")]


@pytest.mark.parametrize("name", ["edge", "grpc-gateway"])
def test_a_patch_without_a_mask_gets_the_fields_its_body_named(name):
    request = _codec(name).decode(PATH, [], b'{"title": "Dune II", "pageCount": 0}', "application/json")
    assert list(request.update_mask.paths) == ["page_count", "title"]
    assert request.book.name == "shelves/scifi/books/dune" and request.book.title == "Dune II"


def test_a_mask_the_query_gave_stands():
    request = _codec().decode(PATH, [("updateMask", "title")], b'{"title": "x", "author": "y"}', None)
    assert list(request.update_mask.paths) == ["title"]


def test_a_patch_without_a_body_gets_an_empty_mask_set():
    request = _codec().decode(PATH, [], b"", None)
    assert request.HasField("update_mask") and list(request.update_mask.paths) == []


@pytest.mark.parametrize("codec", [
    _codec("envoy"),  # Envoy's transcoder does not fill it
    _codec(method="PUT"),  # only a PATCH
    _codec(method="POST"),
    _codec(body="*"),  # the whole message is the body: no field to read the keys of
], ids=["envoy", "put", "post", "body-star"])
def test_no_mask_is_made_outside_the_rule(codec):
    body = b'{"title": "x"}' if codec.body == "book" else b'{"book": {"title": "x"}}'
    request = codec.decode(PATH, [], body, None)
    assert not request.HasField("update_mask")
    assert request.book.title == "x"


def test_an_unknown_key_is_a_400_even_where_unknown_fields_are_ignored():
    """grpc-gateway refuses it too: a mask that silently left out a sent field would not be
    the update the client asked for."""
    with pytest.raises(BadRequest) as caught:
        _codec("grpc-gateway").decode(PATH, [], b'{"title": "x", "subtitle": "y"}', None)
    assert caught.value.field == "book.subtitle"
