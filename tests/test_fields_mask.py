"""The `fields` mask: parsing, checking against descriptors and trimming, as tables (no I/O)."""
from __future__ import annotations

import pytest

from edgedemo import library_pb2, users_pb2
from edgetest import kinds_pb2
from transcoding.partial import FieldsError, Level, apply, compile_fields, parse_fields

KINDS = Level.of_message(kinds_pb2.Kinds.DESCRIPTOR)
BOOKS = Level.of_message(library_pb2.ListBooksResponse.DESCRIPTOR)
USERS = Level.of_message(users_pb2.ListUsersResponse.DESCRIPTOR)

LIST = {
    "books": [
        {"name": "shelves/a/books/1", "title": "Dune", "author": "Herbert", "tags": ["x"], "publishTime": "1965-08-01T00:00:00Z"},
        {"name": "shelves/a/books/2", "title": "Emma", "pageCount": 474},
        {"name": "shelves/a/books/3"},
    ],
    "nextPageToken": "tok",
}
KIND = {
    "fInt32": 1,
    "customName": "j",
    "inner": {"name": "in", "count": 2, "child": {"name": "deep", "child": {"name": "deeper", "count": 9}}, "tags": ["t"]},
    "items": [{"name": "i1", "color": "RED"}, {"name": "i2", "when": "2024-01-01T00:00:00Z"}],
    "labels": {"env": "prod", "team": "core", "tier": "gold"},
    "innerById": {"1": {"name": "one", "count": 1}, "2": {"name": "two", "tags": ["a"]}},
    "st": {"a": {"b": 1, "c": 2}, "d": [1, 2]},
    "ts": "2024-01-01T00:00:00Z",
    "ids": ["1", "2"],
}


@pytest.mark.parametrize("text, tree", [
    ("a", {"a": None}),
    ("a,b", {"a": None, "b": None}),
    (" a , b ", {"a": None, "b": None}),
    ("a/b", {"a": {"b": None}}),
    ("a.b", {"a": {"b": None}}),
    ("a(b,c)", {"a": {"b": None, "c": None}}),
    ("a(b(c,d),e),f", {"a": {"b": {"c": None, "d": None}, "e": None}, "f": None}),
    ("a/b(c)", {"a": {"b": {"c": None}}}),
    ("a(b),a(c)", {"a": {"b": None, "c": None}}),
    ("a,a(b)", {"a": None}),  # the whole field wins
    ("a(b),a", {"a": None}),
    ("a/b,a", {"a": None}),
    ("a/b,a/b/c", {"a": {"b": None}}),
    ("*", {"*": None}),
    ("*,a/b", {"*": None, "a": {"b": None}}),
    ("a( b , c )", {"a": {"b": None, "c": None}}),
])
def test_parse(text, tree):
    assert parse_fields(text) == tree


@pytest.mark.parametrize("text, message", [
    ("a(b", "parenthesis at position 2 is not closed"),
    ("a(b(c)", "parenthesis at position 2 is not closed"),
    ("a)", "unexpected ')' at position 2"),
    ("a,,b", "missing at position 3"),
    (",a", "missing at position 1"),
    ("a,", "missing at the end"),
    ("a/", "missing at the end"),
    ("a//b", "missing at position 3"),
    ("a()", "missing at position 3"),
    ("a(b)c", "unexpected 'c' at position 5"),
    ("(a)", "missing at position 1"),
    ("a" * 5000, "at most 4096"),
    ("a(" * 40 + "b" + ")" * 40, "nested more than 32"),
])
def test_syntax_errors(text, message):
    with pytest.raises(FieldsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_fields(text)


@pytest.mark.parametrize("text, root, value, expected", [
    # nested and repeated messages
    ("books(name,title),nextPageToken", BOOKS, LIST,
     {"books": [{"name": "shelves/a/books/1", "title": "Dune"}, {"name": "shelves/a/books/2", "title": "Emma"},
                {"name": "shelves/a/books/3"}], "nextPageToken": "tok"}),
    ("books/title", BOOKS, LIST, {"books": [{"title": "Dune"}, {"title": "Emma"}, {}]}),
    ("books.page_count", BOOKS, LIST, {"books": [{}, {"pageCount": 474}, {}]}),  # proto spelling in, JSON out
    ("nextPageToken", BOOKS, LIST, {"nextPageToken": "tok"}),
    ("next_page_token", BOOKS, LIST, {"nextPageToken": "tok"}),
    ("books", BOOKS, LIST, {"books": LIST["books"]}),
    ("books(tags,publishTime)", BOOKS, LIST, {"books": [{"tags": ["x"], "publishTime": "1965-08-01T00:00:00Z"}, {}, {}]}),
    ("*", BOOKS, LIST, LIST),
    ("", BOOKS, LIST, LIST),
    ("*,books/name", BOOKS, LIST,
     {"books": [{"name": "shelves/a/books/1"}, {"name": "shelves/a/books/2"}, {"name": "shelves/a/books/3"}],
      "nextPageToken": "tok"}),
    ("books(*)", BOOKS, LIST, {"books": LIST["books"]}),
    # deep nesting, through a recursive type
    ("inner(child(child(count)))", KINDS, KIND, {"inner": {"child": {"child": {"count": 9}}}}),
    ("inner/child/name,inner/tags", KINDS, KIND, {"inner": {"tags": ["t"], "child": {"name": "deep"}}}),
    ("items/color", KINDS, KIND, {"items": [{"color": "RED"}, {}]}),
    # maps: keys, not fields; '*' for every entry
    ("labels", KINDS, KIND, {"labels": {"env": "prod", "team": "core", "tier": "gold"}}),
    ("labels(env,team)", KINDS, KIND, {"labels": {"env": "prod", "team": "core"}}),
    ("labels/tier", KINDS, KIND, {"labels": {"tier": "gold"}}),
    ("labels/missing", KINDS, KIND, {"labels": {}}),
    ("innerById/*/name", KINDS, KIND, {"innerById": {"1": {"name": "one"}, "2": {"name": "two"}}}),
    ("innerById(2(tags))", KINDS, KIND, {"innerById": {"2": {"tags": ["a"]}}}),
    ("innerById(*(name),1(count))", KINDS, KIND, {"innerById": {"1": {"count": 1}, "2": {"name": "two"}}}),
    ("inner_by_id/1", KINDS, KIND, {"innerById": {"1": {"name": "one", "count": 1}}}),
    # Struct: keys at any depth; json_name spellings
    ("st/a/b", KINDS, KIND, {"st": {"a": {"b": 1}}}),
    ("st(d)", KINDS, KIND, {"st": {"d": [1, 2]}}),
    ("customName,json_named", KINDS, KIND, {"customName": "j"}),
    ("ts,ids,fInt32", KINDS, KIND, {"fInt32": 1, "ts": "2024-01-01T00:00:00Z", "ids": ["1", "2"]}),
    ("fBool", KINDS, KIND, {}),  # a field the reply left out (a default value) stays out
])
def test_trim(text, root, value, expected):
    assert apply(compile_fields(text, root), value) == expected


def test_proto_names_printed():
    value = {"books": [{"name": "n", "page_count": 3, "title": "t"}], "next_page_token": "x"}
    selection = compile_fields("books(pageCount),nextPageToken", BOOKS, use_proto_names=True)
    assert apply(selection, value) == {"books": [{"page_count": 3}], "next_page_token": "x"}


@pytest.mark.parametrize("text, root, message, path", [
    ("bookz", BOOKS, "'bookz' names no field of edgedemo.library.v1.ListBooksResponse", "bookz"),
    ("books(name,titel)", BOOKS, "'books.titel' names no field of edgedemo.library.v1.Book", "books.titel"),
    ("books/publishTime/seconds", BOOKS, "google.protobuf.Timestamp, which prints as a JSON value of its own",
     "books.publishTime.seconds"),
    ("nextPageToken/x", BOOKS, "'next_page_token', a scalar field", "nextPageToken.x"),
    ("books/tags/x", BOOKS, "'tags', a repeated scalar field", "books.tags.x"),
    ("books/genre(x)", BOOKS, "'genre', an enum field", "books.genre.x"),
    ("*/name", BOOKS, "'*' keeps every field whole", "*"),
    ("innerById/*/nope", KINDS, "'innerById.*.nope' names no field of edgetest.kinds.v1.Inner", "innerById.*.nope"),
    ("labels/env/x", KINDS, "'labels.env.x' selects inside 'labels.env'", "labels.env.x"),
    ("users(labels,role,bogus)", USERS, "'users.bogus' names no field of edgedemo.users.v1.User", "users.bogus"),
])
def test_unknown_fields_are_named(text, root, message, path):
    with pytest.raises(FieldsError) as caught:
        compile_fields(text, root)
    assert message in str(caught.value)
    assert caught.value.path == path


@pytest.mark.parametrize("text, root, paths", [
    ("books(name,title),nextPageToken", BOOKS, ("books.name", "books.title", "next_page_token")),
    ("books,books/name", BOOKS, ("books",)),
    ("books(*)", BOOKS, ("books",)),
    ("*,books/name", BOOKS, ()),  # everything: no read mask
    ("labels(env),innerById/*/name", KINDS, ("inner_by_id", "labels")),  # map keys: the whole map
    ("customName,inner(child/count)", KINDS, ("inner.child.count", "json_named")),
    ("st/a", KINDS, ("st",)),
])
def test_read_mask_paths(text, root, paths):
    assert compile_fields(text, root).paths == paths


def test_select_everything_is_no_selection():
    assert compile_fields("", BOOKS) is None
    assert compile_fields("  ", BOOKS) is None
    assert compile_fields("*", BOOKS) is None


def test_keyed_root_for_composed_replies():
    root = Level.of_keys({"shelf": Level.of_message(library_pb2.Shelf.DESCRIPTOR), "books": BOOKS})
    selection = compile_fields("shelf(theme),books/books/title", root)
    assert set(selection.keys) == {"shelf", "books"}
    assert apply(selection.keys["books"], LIST) == {"books": [{"title": "Dune"}, {"title": "Emma"}, {}]}
    with pytest.raises(FieldsError, match=r"'me' names no key of the composed reply \(its keys: books, shelf\)"):
        compile_fields("me", root)
    with pytest.raises(FieldsError, match="'shelf.x' names no field of edgedemo.library.v1.Shelf"):
        compile_fields("shelf(x)", root)
