"""Path template grammar: parsed structure of valid templates, error offsets of invalid ones."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transcoding.template import PathTemplate, Segment, TemplateError, Variable, parse_template


def seg(token: str) -> Segment:
    return {"*": Segment("single"), "**": Segment("multi")}.get(token, Segment("literal", token))


# (template, segments as "/"-joined tokens, variables as (dotted path, start, end), verb)
VALID = [
    ("/", "", [], None),
    ("/v1", "v1", [], None),
    ("/v1/books", "v1/books", [], None),
    ("/v1/*", "v1/*", [], None),
    ("/v1/**", "v1/**", [], None),
    ("/**", "**", [], None),
    ("/*/*", "*/*", [], None),
    ("/v1/*/books", "v1/*/books", [], None),
    ("/v1/{name}", "v1/*", [("name", 1, 2)], None),
    ("/v1/{name=*}", "v1/*", [("name", 1, 2)], None),
    ("/v1/{name=**}", "v1/**", [("name", 1, 2)], None),
    ("/v1/{name=shelves/*}", "v1/shelves/*", [("name", 1, 3)], None),
    ("/v1/{name=shelves/*/books/*}", "v1/shelves/*/books/*", [("name", 1, 5)], None),
    ("/v1/{name=shelves/**}", "v1/shelves/**", [("name", 1, 3)], None),
    ("/v1/{book.name=shelves/*/books/*}", "v1/shelves/*/books/*", [("book.name", 1, 5)], None),
    ("/v1/{a.b.c}", "v1/*", [("a.b.c", 1, 2)], None),
    ("/v1/{_x1}", "v1/*", [("_x1", 1, 2)], None),
    ("/v1/shelves/{shelf}/books/{book}", "v1/shelves/*/books/*", [("shelf", 2, 3), ("book", 4, 5)], None),
    ("/v1/{parent=projects/*}/items/{item_id}", "v1/projects/*/items/*", [("parent", 1, 3), ("item_id", 4, 5)], None),
    ("/{x}/a", "*/a", [("x", 0, 1)], None),
    ("/{x=**}", "**", [("x", 0, 1)], None),
    ("/v1/books:search", "v1/books", [], "search"),
    ("/v1/{name=projects/*}:cancel", "v1/projects/*", [("name", 1, 3)], "cancel"),
    ("/v1/{name=**}:cancel", "v1/**", [("name", 1, 2)], "cancel"),
    ("/v1/**:undelete", "v1/**", [], "undelete"),
    ("/v1/*:get", "v1/*", [], "get"),
    ("/v1/{name}:batchGet", "v1/*", [("name", 1, 2)], "batchGet"),
    ("/v1/a-b.c_d~e", "v1/a-b.c_d~e", [], None),
    ("/v1/!$&'()+,;=", "v1/!$&'()+,;=", [], None),
    ("/v1/a%20b", "v1/a%20b", [], None),
    ("/v1/a%2fb", "v1/a%2fb", [], None),
    ("/v1/x:a%20b", "v1/x", [], "a%20b"),
    ("/v1/{x=a=b}", "v1/a=b", [("x", 1, 2)], None),
    ("/v1/{x=*/*}", "v1/*/*", [("x", 1, 3)], None),
    ("/v1/{x=a/b}/c", "v1/a/b/c", [("x", 1, 3)], None),
    ("/v1/{a}/{b}/{c}", "v1/*/*/*", [("a", 1, 2), ("b", 2, 3), ("c", 3, 4)], None),
    ("/v1/{a}/{a.b}", "v1/*/*", [("a", 1, 2), ("a.b", 2, 3)], None),
    ("/{name=projects/*/locations/*}/operations", "projects/*/locations/*/operations", [("name", 0, 4)], None),
    # '**' followed by more segments (both anchors accept literals after it; grpc-gateway also
    # '*' and variables). A variable's end is a template index; the matcher maps it onto the path.
    ("/v1/{name=files/**}/contents", "v1/files/**/contents", [("name", 1, 3)], None),
    ("/a/{b=**}/d/e", "a/**/d/e", [("b", 1, 2)], None),
    ("/{x=**}/tail:verb", "**/tail", [("x", 0, 1)], "verb"),
    ("/foo/**/b:verb", "foo/**/b", [], "verb"),
    ("/v1/**/x", "v1/**/x", [], None),
    ("/**/*", "**/*", [], None),
    ("/v1/{a=**}/x", "v1/**/x", [("a", 1, 2)], None),
    ("/v1/{a=b/**}/{c}", "v1/b/**/*", [("a", 1, 3), ("c", 3, 4)], None),
    ("/v1/{a=**/b}", "v1/**/b", [("a", 1, 3)], None),
    ("/a/{x=b/*/**/y/z}/foo", "a/b/*/**/y/z/foo", [("x", 1, 6)], None),
    ("/c/{x=*}/{y=d/**}/e:verb", "c/*/d/**/e", [("x", 1, 2), ("y", 2, 4)], "verb"),
    ("/alpha/{x=*}/beta/{y=**}/gamma", "alpha/*/beta/**/gamma", [("x", 1, 2), ("y", 3, 4)], None),
    ("/{x=**}/a/b", "**/a/b", [("x", 0, 1)], None),
]


@pytest.mark.parametrize(("text", "segments", "variables", "verb"), VALID, ids=[v[0] for v in VALID])
def test_valid_template_structure(text: str, segments: str, variables: list, verb: str | None) -> None:
    parsed = parse_template(text)
    expected_segments = tuple(seg(t) for t in segments.split("/")) if segments else ()
    assert parsed.text == text
    assert parsed.segments == expected_segments
    assert parsed.variables == tuple(Variable(tuple(p.split(".")), s, e) for p, s, e in variables)
    assert parsed.verb == verb
    assert parsed.field_paths() == [p for p, _, _ in variables]


# (template, expected error position, fragment of the message)
INVALID = [
    ("", 0, "must start with '/'"),
    ("v1/books", 0, "must start with '/'"),
    ("{x}", 0, "must start with '/'"),
    ("//", 1, "empty segment"),
    ("/v1//books", 4, "empty segment"),
    ("/v1/", 4, "empty segment"),
    ("/v1/books/", 10, "empty segment"),
    ("/:verb", 1, "empty segment"),
    ("/v1/{a", 6, "unterminated variable"),
    ("/v1/{a=b/*", 10, "unterminated variable"),
    ("/v1/{a.b", 8, "unterminated variable"),
    ("/v1/{a=b/{c}}", 9, "nested variables"),
    ("/v1/{a={b}}", 7, "nested variables"),
    # At most one '**' (both anchors refuse a second: where each ends would be ambiguous).
    ("/v1/**/**", 7, "a template may hold only one '**'"),
    ("/a/**/foo/**", 10, "a template may hold only one '**'"),
    ("/v1/{a=**}/{b=**}", 14, "a template may hold only one '**'"),
    ("/**/{x=**}", 7, "a template may hold only one '**'"),
    ("/{x=**}/**:v", 8, "a template may hold only one '**'"),
    ("/v1/{a}/{a}", 9, "duplicate field path 'a'"),
    ("/v1/{a.b}/x/{a.b=*}", 13, "duplicate field path 'a.b'"),
    ("/v1/b k", 5, "illegal character ' '"),
    ("/v1/b?k", 5, "illegal character '?'"),
    ("/v1/b#k", 5, "illegal character '#'"),
    ("/v1/caf\u00e9", 7, "illegal character"),
    ("/v1/a@b", 5, "illegal character '@'"),
    ("/v1/a{b}", 5, "illegal character '{'"),
    ("/v1/a:b/c", 5, "illegal character ':'"),
    ("/v1/{x}:a:b", 7, "expected '/' but found ':'"),
    ("/v1/a%zz", 5, "malformed percent-encoding"),
    ("/v1/a%4", 5, "malformed percent-encoding"),
    ("/v1/x:b%g0", 7, "malformed percent-encoding in verb"),
    ("/v1/books:", 10, "empty verb"),
    ("/v1/{name}:", 11, "empty verb"),
    ("/v1/x:{a}", 6, "illegal character '{' in verb"),
    ("/v1/x:a*", 7, "illegal character '*' in verb"),
    ("/v1/{1a}", 5, "expected a field name"),
    ("/v1/{}", 5, "expected a field name"),
    ("/v1/{a.}", 7, "expected a field name"),
    ("/v1/{.a}", 5, "expected a field name"),
    ("/v1/{a-b}", 6, "illegal character '-' in field path"),
    ("/v1/{a:b}", 6, "illegal character ':' in field path"),
    ("/v1/{a b}", 6, "illegal character ' ' in field path"),
    ("/v1/{a=}", 7, "empty pattern after '='"),
    ("/v1/{a=", 7, "empty pattern after '='"),
    ("/v1/{a=/b}", 7, "empty segment"),
    ("/v1/{a=b/}", 9, "empty segment"),
    ("/v1/*a", 5, "must be a whole segment"),
    ("/v1/a*", 5, "illegal character '*'"),
    ("/v1/***", 6, "must be a whole segment"),
    ("/v1/a}", 5, "unexpected '}'"),
    ("/v1/{a}b", 7, "expected '/' but found 'b'"),
    ("/v1/{a=b}c", 9, "expected '/' but found 'c'"),
]


@pytest.mark.parametrize(("text", "position", "message"), INVALID, ids=[repr(v[0]) for v in INVALID])
def test_invalid_template_position(text: str, position: int, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text)
    error = info.value
    assert message in error.message
    assert error.position == position
    assert error.template == text
    assert isinstance(error, ValueError)


def test_error_string_names_template_problem_and_position() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("/v1/{a")
    assert str(info.value) == "invalid path template '/v1/{a': unterminated variable at position 6"


def test_parsed_template_is_immutable_and_hashable() -> None:
    template = parse_template("/v1/{name=shelves/*}:get")
    assert template == parse_template("/v1/{name=shelves/*}:get")
    assert hash(template) == hash(parse_template("/v1/{name=shelves/*}:get"))
    assert str(template) == "/v1/{name=shelves/*}:get"
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.verb = "x"  # type: ignore[misc]
    assert isinstance(template, PathTemplate)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="/{}*=.:%abz09_-~ \u00e9", max_size=24))
def test_arbitrary_text_parses_or_raises_template_error(text: str) -> None:
    try:
        template = parse_template(text)
    except TemplateError as error:
        assert 0 <= error.position <= len(text)
        return
    # Whatever parses satisfies the invariants the matcher relies on.
    multi = [i for i, s in enumerate(template.segments) if s.kind == "multi"]
    assert len(multi) <= 1 and template.double_wildcard == (multi[0] if multi else None)
    for variable in template.variables:
        assert 0 <= variable.start < variable.end <= len(template.segments)
    assert len(set(template.field_paths())) == len(template.variables)
