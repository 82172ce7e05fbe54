"""Route lookup: precedence, verbs, percent-decoding, method errors, conflicts, scale."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transcoding.matcher import (
    Match,
    MethodNotAllowed,
    NoRoute,
    PathEncodingError,
    PathMatcher,
    RouteConflict,
)
from transcoding.template import parse_template


def build(routes: list[tuple[str, str]]) -> PathMatcher[str]:
    matcher: PathMatcher[str] = PathMatcher()
    for method, text in routes:
        matcher.add(method, parse_template(text), f"{method} {text}")
    return matcher


def b(**values: str) -> list[tuple[tuple[str, ...], str]]:
    """Expected bindings; '__' in a keyword stands for '.' in the field path."""
    return [(tuple(name.split("__")), value) for name, value in values.items()]


BOOKSTORE = build(
    [
        ("GET", "/"),
        ("GET", "/v1/shelves"),
        ("POST", "/v1/shelves"),
        ("GET", "/v1/shelves/{shelf}"),
        ("DELETE", "/v1/shelves/{shelf}"),
        ("GET", "/v1/shelves/{shelf}/books/{book}"),
        ("PATCH", "/v1/shelves/{shelf}/books/{book.id}"),
        ("GET", "/v1/shelves/featured"),
        ("GET", "/v1/shelves/featured/books/{book}"),
        ("POST", "/v1/books:search"),
        ("GET", "/v1/books/{id}"),
        ("GET", "/v1/{name=publishers/*/books/*}"),
        ("POST", "/v1/{name=publishers/*/books/*}:archive"),
        ("POST", "/v1/{name=operations/**}:cancel"),
        ("GET", "/v1/{name=operations/**}"),
        ("GET", "/files/{path=**}"),
        ("PUT", "/files/{path=**}"),
        ("GET", "/files/special/readme"),
        ("GET", "/v2/*/items/{item}"),
        ("GET", "/v2/**"),
        ("PURGE", "/cache/{key}"),
        ("OPTIONS", "/cache/{key}"),
        ("GET", "/tags/{tag}"),
        ("POST", "/tags/{tag}:rename"),
    ]
)

# (method, raw path, expected route, expected bindings)
LOOKUPS = [
    ("GET", "/", "GET /", b()),
    ("GET", "/v1/shelves", "GET /v1/shelves", b()),
    ("POST", "/v1/shelves", "POST /v1/shelves", b()),
    ("GET", "/v1/shelves/", "GET /v1/shelves", b()),  # trailing slash dropped, as Envoy
    ("GET", "/v1/shelves//", "GET /v1/shelves", b()),
    ("GET", "/v1/shelves/7", "GET /v1/shelves/{shelf}", b(shelf="7")),
    ("DELETE", "/v1/shelves/7", "DELETE /v1/shelves/{shelf}", b(shelf="7")),
    ("GET", "/v1/shelves/7/books/9", "GET /v1/shelves/{shelf}/books/{book}", b(shelf="7", book="9")),
    ("PATCH", "/v1/shelves/7/books/9", "PATCH /v1/shelves/{shelf}/books/{book.id}", b(shelf="7", book__id="9")),
    # Literal beats '*' segment by segment, with per-method fallback.
    ("GET", "/v1/shelves/featured", "GET /v1/shelves/featured", b()),
    ("DELETE", "/v1/shelves/featured", "DELETE /v1/shelves/{shelf}", b(shelf="featured")),
    ("GET", "/v1/shelves/featured/books/3", "GET /v1/shelves/featured/books/{book}", b(book="3")),
    ("PATCH", "/v1/shelves/featured/books/3", "PATCH /v1/shelves/{shelf}/books/{book.id}", b(shelf="featured", book__id="3")),
    # Verbs.
    ("POST", "/v1/books:search", "POST /v1/books:search", b()),
    ("GET", "/v1/books/12", "GET /v1/books/{id}", b(id="12")),
    ("GET", "/v1/books/12:search", "GET /v1/books/{id}", b(id="12:search")),  # retry keeps ':search'
    ("GET", "/v1/books/a:b", "GET /v1/books/{id}", b(id="a:b")),  # unknown verb is data
    ("GET", "/v1/books/a%3Asearch", "GET /v1/books/{id}", b(id="a:search")),  # %3A never splits
    ("POST", "/v1/publishers/p/books/b:archive", "POST /v1/{name=publishers/*/books/*}:archive", b(name="publishers/p/books/b")),
    ("GET", "/v1/publishers/p/books/b", "GET /v1/{name=publishers/*/books/*}", b(name="publishers/p/books/b")),
    ("POST", "/v1/operations/a/b/c:cancel", "POST /v1/{name=operations/**}:cancel", b(name="operations/a/b/c")),
    ("POST", "/v1/operations:cancel", "POST /v1/{name=operations/**}:cancel", b(name="operations")),
    ("GET", "/v1/operations/a/b:cancel", "GET /v1/{name=operations/**}", b(name="operations/a/b:cancel")),
    ("GET", "/v1/operations/x", "GET /v1/{name=operations/**}", b(name="operations/x")),
    ("POST", "/tags/t1:rename", "POST /tags/{tag}:rename", b(tag="t1")),
    ("GET", "/tags/t1:rename", "GET /tags/{tag}", b(tag="t1:rename")),
    ("GET", "/tags/:rename", "GET /tags/{tag}", b(tag=":rename")),
    ("POST", "/tags/t1:%72ename", "POST /tags/{tag}:rename", b(tag="t1")),  # verb normalised
    # '**' matches zero or more segments; literal beats it.
    ("GET", "/files", "GET /files/{path=**}", b(path="")),
    ("GET", "/files/a", "GET /files/{path=**}", b(path="a")),
    ("GET", "/files/a/b/c.txt", "GET /files/{path=**}", b(path="a/b/c.txt")),
    ("PUT", "/files/a/b", "PUT /files/{path=**}", b(path="a/b")),
    ("GET", "/files/special/readme", "GET /files/special/readme", b()),
    ("GET", "/files/special/other", "GET /files/{path=**}", b(path="special/other")),
    ("GET", "/files/special", "GET /files/{path=**}", b(path="special")),
    ("GET", "/v2/x/items/5", "GET /v2/*/items/{item}", b(item="5")),
    ("GET", "/v2/x/items/5/more", "GET /v2/**", b()),
    ("GET", "/v2/x/things/5", "GET /v2/**", b()),
    ("GET", "/v2", "GET /v2/**", b()),
    # Custom methods are matched exactly.
    ("PURGE", "/cache/k1", "PURGE /cache/{key}", b(key="k1")),
    ("OPTIONS", "/cache/k1", "OPTIONS /cache/{key}", b(key="k1")),
    # Literals compare after decoding unreserved escapes.
    ("GET", "/v1/%73helves", "GET /v1/shelves", b()),
    ("GET", "/%76%31/shelves/featured", "GET /v1/shelves/featured", b()),
    # Empty inner segments are kept; only a wildcard matches them.
    ("GET", "/v1/shelves//books/9", "GET /v1/shelves/{shelf}/books/{book}", b(shelf="", book="9")),
]


@pytest.mark.parametrize(("method", "path", "route", "bindings"), LOOKUPS, ids=[f"{m} {p}" for m, p, _, _ in LOOKUPS])
def test_lookup_route_and_bindings(method: str, path: str, route: str, bindings: list) -> None:
    match = BOOKSTORE.lookup(method, path)
    assert isinstance(match, Match)
    assert match.value == route
    assert match.bindings == bindings


# (method, raw path, sorted allowed methods)
NOT_ALLOWED = [
    ("DELETE", "/v1/shelves", ["GET", "POST"]),
    ("PUT", "/v1/shelves/7", ["DELETE", "GET"]),
    ("get", "/v1/shelves", ["GET", "POST"]),  # methods are compared exactly
    ("PUT", "/v1/shelves/featured", ["DELETE", "GET"]),
    ("GET", "/v1/books:search", ["POST"]),
    ("DELETE", "/v1/books/1:search", ["GET"]),
    ("POST", "/files/a/b", ["GET", "PUT"]),
    ("GET", "/cache/k", ["OPTIONS", "PURGE"]),
    ("DELETE", "/tags/t:rename", ["GET", "POST"]),
    ("POST", "/", ["GET"]),
    ("POST", "/v1/publishers/p/books/b:unknown", ["GET"]),  # unknown verb is part of {name}
    ("POST", "/tags/:rename", ["GET"]),  # ':' first in a segment never starts a verb
]


@pytest.mark.parametrize(("method", "path", "allowed"), NOT_ALLOWED, ids=[f"{m} {p}" for m, p, _ in NOT_ALLOWED])
def test_method_not_allowed_lists_methods(method: str, path: str, allowed: list[str]) -> None:
    with pytest.raises(MethodNotAllowed) as info:
        BOOKSTORE.lookup(method, path)
    assert info.value.allowed == allowed
    assert method in str(info.value) and path in str(info.value)


NO_ROUTE = [
    ("GET", "/v3"),
    ("GET", "/v1"),
    ("GET", "/v1/shelves/7/books"),
    ("GET", "/v1/shelves/7/books/9/extra"),
    ("GET", "/v1/SHELVES"),  # literals are case-sensitive
    ("GET", "/v1/publishers/p/books"),
    ("POST", "/v1/publishers/p/books/b/c:unknown"),
    ("GET", ""),
    ("GET", "v1/shelves"),
    ("GET", "*"),
    ("PURGE", "/cache/a/b"),
    ("BREW", "/coffee"),
]


@pytest.mark.parametrize(("method", "path"), NO_ROUTE, ids=[f"{m} {p!r}" for m, p in NO_ROUTE])
def test_no_route(method: str, path: str) -> None:
    with pytest.raises(NoRoute) as info:
        BOOKSTORE.lookup(method, path)
    assert info.value.path == path
    assert not isinstance(info.value, MethodNotAllowed)


# (routes in insertion order, method, path, expected winner): precedence must not
# depend on the order templates were added in.
PRECEDENCE = [
    (["/a/b", "/a/*"], "/a/b", "/a/b"),
    (["/a/b", "/a/*"], "/a/c", "/a/*"),
    (["/a/*", "/a/**"], "/a/b", "/a/*"),
    (["/a/*", "/a/**"], "/a/b/c", "/a/**"),
    (["/a/b", "/a/**"], "/a/b", "/a/b"),
    (["/a", "/a/**"], "/a", "/a"),
    (["/**", "/"], "/", "/"),
    (["/**"], "/", "/**"),
    (["/**"], "/x/y", "/**"),
    (["/*/b/c", "/a/*/*"], "/a/b/c", "/a/*/*"),  # leftmost literal decides
    (["/*/b/c", "/a/*/*"], "/x/b/c", "/*/b/c"),
    (["/a/*/c", "/a/b/*"], "/a/b/c", "/a/b/*"),
    (["/a/b/d", "/a/*/c"], "/a/b/c", "/a/*/c"),  # backtrack out of the literal branch
    (["/a/b/c/d", "/a/*/c/e", "/a/**"], "/a/b/c/e", "/a/*/c/e"),
    (["/a/b/c/d", "/a/*/c/e", "/a/**"], "/a/b/c/f", "/a/**"),
    (["/{x=a/*}/b", "/a/b/{y}"], "/a/b/b", "/a/b/{y}"),
    (["/v1/{name=projects/*}", "/v1/*/{p}"], "/v1/projects/1", "/v1/{name=projects/*}"),
    (["/v1/{name=projects/*}", "/v1/*/{p}"], "/v1/folders/1", "/v1/*/{p}"),
    (["/c/*/d/**", "/c/*/d/e", "/c/f/d/e"], "/c/x/d/e", "/c/*/d/e"),
    (["/c/*/d/**", "/c/*/d/e", "/c/f/d/e"], "/c/f/d/e", "/c/f/d/e"),
    (["/c/*/d/**", "/c/*/d/e", "/c/f/d/e"], "/c/f/d/x", "/c/*/d/**"),
    (["/x:verb", "/*:verb", "/x"], "/x:verb", "/x:verb"),
    (["/x:verb", "/*:verb", "/x"], "/y:verb", "/*:verb"),
    (["/x:verb", "/*", "/x"], "/y:verb", "/*"),
    (["/*:verb", "/**"], "/a/b:verb", "/**"),
    (["/a/*:verb", "/a/**:verb"], "/a/b:verb", "/a/*:verb"),
    (["/a/*:verb", "/a/**:verb"], "/a/b/c:verb", "/a/**:verb"),
]


@pytest.mark.parametrize(("templates", "path", "winner"), PRECEDENCE, ids=[f"{t} {p}" for t, p, _ in PRECEDENCE])
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_precedence_is_independent_of_insertion_order(templates: list[str], path: str, winner: str, reverse: bool) -> None:
    matcher = build([("GET", t) for t in (reversed(templates) if reverse else templates)])
    assert matcher.lookup("GET", path).value == f"GET {winner}"


# (template, raw path, expected single binding value)
DECODING = [
    # One-segment variables are fully decoded, %2F included.
    ("/v1/{x}", "/v1/p%20q%2Fr", "p q/r"),
    ("/v1/{x}", "/v1/a%2fb", "a/b"),
    ("/v1/{x}", "/v1/%21%23%24%26%27%28%29%2A%2B%2C%3A%3B%3D%3F%40%5B%5D", "!#$&'()*+,:;=?@[]"),
    ("/v1/{x}", "/v1/caf%C3%A9", "caf\u00e9"),
    ("/v1/{x}", "/v1/%E2%82%AC100", "\u20ac100"),
    ("/v1/{x}", "/v1/a+b", "a+b"),  # '+' is not a space in paths
    ("/v1/{x}", "/v1/%25", "%"),
    ("/v1/{x}", "/v1/%2525", "%25"),  # decoded once only
    ("/v1/{x=*}", "/v1/%7Efoo", "~foo"),
    # Multi-segment variables keep %2F / %2f as written and decode the rest.
    ("/v1/{x=**}", "/v1/p/foo%20foo/q/bar%2Fbar", "p/foo foo/q/bar%2Fbar"),
    ("/v1/{x=**}", "/v1/a%2fb", "a%2fb"),  # one segment, but '**' is multi-segment
    ("/v1/{x=**}", "/v1/%21%23%3A%40%2F", "!#:@%2F"),
    ("/v1/{x=**}", "/v1/caf%C3%A9/%E2%82%AC", "caf\u00e9/\u20ac"),
    ("/v1/{x=a/*}", "/v1/a/b%2Fc%20d", "a/b%2Fc d"),
    ("/v1/{x=shelves/*/books/*}", "/v1/shelves/s%2F1/books/b%3F", "shelves/s%2F1/books/b?"),
    ("/v1/{x=shelves/*}", "/v1/%73helves/1", "shelves/1"),
    # Malformed escapes stay verbatim, as Envoy leaves them.
    ("/v1/{x}", "/v1/%zz", "%zz"),
    ("/v1/{x}", "/v1/ab%4", "ab%4"),
    ("/v1/{x}", "/v1/%", "%"),
    ("/v1/{x}", "/v1/%20%g1", " %g1"),
    ("/v1/{x=**}", "/v1/a/%zz/%2", "a/%zz/%2"),
    # Verbs are split off before decoding: %3A is data.
    ("/v1/{x}:go", "/v1/a%3Ab:go", "a:b"),
    ("/v1/{x=**}:go", "/v1/a/b%3Ac:go", "a/b:c"),
]


@pytest.mark.parametrize(("template", "path", "value"), DECODING, ids=[p for _, p, _ in DECODING])
def test_percent_decoding_of_bindings(template: str, path: str, value: str) -> None:
    match = build([("GET", template)]).lookup("GET", path)
    assert match.bindings == [(("x",), value)]


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v1/{x}", "/v1/%FF"),
        ("/v1/{x}", "/v1/%C3"),
        ("/v1/{x=**}", "/v1/a/%C3%28"),
        ("/v1/{x=a/*}", "/v1/a/%ED%A0%80"),  # encoded surrogate
    ],
)
def test_invalid_utf8_in_variable_is_a_client_error(template: str, path: str) -> None:
    with pytest.raises(PathEncodingError) as info:
        build([("GET", template)]).lookup("GET", path)
    assert info.value.field_path == "x"
    assert "not valid UTF-8" in str(info.value)


# (literal template, raw path) pairs that must match: literals compare normalised.
LITERAL_FORMS = [
    ("/v1/abc", "/v1/%61bc"),
    ("/v1/a%20b", "/v1/a%20b"),
    ("/v1/a%20b", "/v1/a%20b"),
    ("/v1/a%2fb", "/v1/a%2Fb"),
    ("/v1/a%2Fb", "/v1/a%2fb"),
    ("/v1/%7euser", "/v1/~user"),
    ("/v1/x:%61ct", "/v1/x:act"),
]


@pytest.mark.parametrize(("template", "path"), LITERAL_FORMS)
def test_literals_compare_in_normal_form(template: str, path: str) -> None:
    assert build([("GET", template)]).lookup("GET", path).value == f"GET {template}"


def test_encoded_reserved_char_does_not_match_its_literal() -> None:
    # '%2F' is data, not a separator: one segment "a%2Fb" is not the two segments a/b.
    matcher = build([("GET", "/v1/a/b")])
    with pytest.raises(NoRoute):
        matcher.lookup("GET", "/v1/a%2Fb")


# (first template, second template, same set of paths?) for the same method.
CONFLICTS = [
    ("/v1/{a}", "/v1/{b}", True),
    ("/v1/*", "/v1/{x}", True),
    ("/v1/{x=*}", "/v1/{y}", True),
    ("/v1/**", "/v1/{x=**}", True),
    ("/v1/{a}/{b}", "/v1/{c=*/*}", True),
    ("/v1/{name=shelves/*}", "/v1/shelves/{id}", True),
    ("/v1/abc", "/v1/%61bc", True),
    ("/v1/a%2fb", "/v1/a%2Fb", True),
    ("/v1/x:go", "/v1/x:go", True),
    ("/v1/{a}:go", "/v1/*:go", True),
    ("/", "/", True),
    ("/v1/*", "/v1/**", False),
    ("/v1/x", "/v1/x:go", False),
    ("/v1/x:go", "/v1/x:stop", False),
    ("/v1/a", "/v1/b", False),
    ("/v1/{a}", "/v1/{a}/x", False),
    ("/v1/*/x", "/v1/x/*", False),
    ("/", "/**", False),
]


@pytest.mark.parametrize(("first", "second", "conflict"), CONFLICTS, ids=[f"{a} vs {b}" for a, b, _ in CONFLICTS])
def test_conflicting_templates_are_refused(first: str, second: str, conflict: bool) -> None:
    matcher: PathMatcher[str] = PathMatcher()
    matcher.add("GET", parse_template(first), "first")
    matcher.add("POST", parse_template(second), "other method never conflicts")
    if not conflict:
        matcher.add("GET", parse_template(second), "second")
        return
    with pytest.raises(RouteConflict) as info:
        matcher.add("GET", parse_template(second), "second")
    assert info.value.existing == "first"
    assert first in str(info.value) and second in str(info.value)


def test_refused_route_keeps_the_existing_one() -> None:
    matcher: PathMatcher[str] = PathMatcher()
    matcher.add("GET", parse_template("/v1/{a}"), "first")
    with pytest.raises(RouteConflict):
        matcher.add("GET", parse_template("/v1/{b}"), "second")
    assert matcher.lookup("GET", "/v1/z") == Match("first", [(("a",), "z")])


@pytest.mark.parametrize("method", ["", "GE T", "GET\n", "G/T", "{GET}"])
def test_invalid_http_method_is_refused(method: str) -> None:
    with pytest.raises(ValueError):
        PathMatcher().add(method, parse_template("/x"), 1)


def test_empty_matcher_has_no_routes() -> None:
    with pytest.raises(NoRoute):
        PathMatcher().lookup("GET", "/")


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_single_segment_round_trip(value: str) -> None:
    """Whatever a client encodes with http.proto's {var} rule comes back intact."""
    match = build([("GET", "/v1/{x}")]).lookup("GET", "/v1/" + quote(value, safe="-_.~"))
    assert match.bindings == [(("x",), value)]


_NO_SLASH = st.characters(blacklist_categories=("Cs",), blacklist_characters="/")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(_NO_SLASH, min_size=1, max_size=8), min_size=1, max_size=5))
def test_multi_segment_round_trip(segments: list[str]) -> None:
    """http.proto's {+var} rule: encode all but [-_.~/0-9a-zA-Z]; the '/'s stay separators."""
    value = "/".join(segments)
    match = build([("GET", "/v1/{x=**}")]).lookup("GET", "/v1/" + quote(value, safe="-_.~/"))
    assert match.bindings == [(("x",), value)]


def test_five_thousand_routes() -> None:
    matcher: PathMatcher[str] = PathMatcher()
    for i in range(5000):
        method = ("GET", "POST", "DELETE", "PATCH")[i % 4]
        matcher.add(method, parse_template(f"/v1/svc{i}/items/{{item_id}}"), f"item {i}")
        matcher.add("POST", parse_template(f"/v1/svc{i}/items/{{item_id}}:act{i % 7}"), f"act {i}")
        matcher.add(method, parse_template(f"/v1/{{parent=svc{i}/*}}/children/{{child=**}}"), f"child {i}")
    matcher.add("GET", parse_template("/v1/**"), "catch-all")
    for i in (0, 1, 2, 3, 777, 2500, 4999):
        method = ("GET", "POST", "DELETE", "PATCH")[i % 4]
        assert matcher.lookup(method, f"/v1/svc{i}/items/x{i}") == Match(f"item {i}", [(("item_id",), f"x{i}")])
        assert matcher.lookup("POST", f"/v1/svc{i}/items/y:act{i % 7}").value == f"act {i}"
        child = matcher.lookup(method, f"/v1/svc{i}/p/children/a/b%2Fc")
        assert child == Match(f"child {i}", [(("parent",), f"svc{i}/p"), (("child",), "a/b%2Fc")])
    assert matcher.lookup("GET", "/v1/svc1/items/x").value == "catch-all"  # svc1 items are POST-only
    with pytest.raises(MethodNotAllowed) as info:
        matcher.lookup("PUT", "/v1/svc5/items/x")
    assert info.value.allowed == ["GET", "POST"]
    with pytest.raises(NoRoute):
        matcher.lookup("GET", "/v2/svc1")


def test_pathological_backtracking_stays_bounded() -> None:
    """Literal and '*' alternatives at every level, with the only match at the far end.

    Naive backtracking would try 2**depth combinations; the trie visits each node once.
    """
    depth = 18

    def path(*segments: str) -> str:
        return "/" + "/".join(segments)

    matcher: PathMatcher[str] = PathMatcher()
    for level in range(depth):
        star = ["a"] * level + ["*"] + ["a"] * (depth - level - 1)
        matcher.add("GET", parse_template(path(*star, "end")), f"star at {level}")
        matcher.add("GET", parse_template(path(*["a"] * (level + 1), "miss")), f"miss {level}")
    matcher.add("POST", parse_template(path(*["a"] * depth, "zzz")), "post")
    # No GET template matches, so every literal/'*' alternative is explored and fails.
    with pytest.raises(MethodNotAllowed) as info:
        matcher.lookup("GET", path(*["a"] * depth, "zzz"))
    assert info.value.allowed == ["POST"]
    # The deepest '*' is the most specific: literals win at every earlier level.
    assert matcher.lookup("GET", path(*["a"] * depth, "end")).value == f"star at {depth - 1}"
    assert matcher.lookup("GET", path("b", *["a"] * (depth - 1), "end")).value == "star at 0"
    # A path far longer than any template is refused without deep recursion.
    with pytest.raises(NoRoute):
        matcher.lookup("GET", "/a" * 50_000)
