"""Route lookup: precedence, '**' with tails, verbs, percent-decoding per mode, method
errors, conflicts, scale and bounded work.

The tables port what grpc-httpjson-transcoding's path_matcher_test.cc and grpc-gateway's
pattern_test.go / mux_test.go check, in our own templates and paths, once per option
value where the anchors differ (transcoding/options.py: path_unescape, custom_verbs,
empty_double_wildcard).
"""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transcoding.matcher as matcher_module
from transcoding.matcher import (
    MalformedEscape,
    Match,
    MethodNotAllowed,
    NoRoute,
    PathEncodingError,
    PathMatcher,
    RouteConflict,
)
from transcoding.options import PROFILES, TranscodingOptions
from transcoding.template import parse_template

RESERVED = "!#$&'()*+,/:;=?@[]"  # RFC 6570 reserved characters
UNESCAPE_MODES = ["all-except-reserved", "all-except-slash", "all-characters", "legacy"]


def build(routes: list[tuple[str, str]], **options: str) -> PathMatcher[str]:
    matcher: PathMatcher[str] = PathMatcher(TranscodingOptions().replace(**options))
    for method, text in routes:
        matcher.add(method, parse_template(text), f"{method} {text}")
    return matcher


def outcome(matcher: PathMatcher[str], method: str, path: str) -> object:
    """What a lookup answers, as the tables spell it: (route, bindings), "404" or ("405", allowed)."""
    try:
        match = matcher.lookup(method, path)
    except MethodNotAllowed as exc:
        return ("405", exc.allowed)
    except NoRoute:
        return "404"
    return (match.value, match.bindings)


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
    ("GET", "/tags/:rename", "GET /tags/{tag}", b(tag=":rename")),  # 'rename' is declared for POST only
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
    ("POST", "/tags/:rename"),  # only ':verb', declared for POST: grpc-gateway's 404
]


@pytest.mark.parametrize(("method", "path"), NO_ROUTE, ids=[f"{m} {p!r}" for m, p in NO_ROUTE])
def test_no_route(method: str, path: str) -> None:
    with pytest.raises(NoRoute) as info:
        BOOKSTORE.lookup(method, path)
    assert info.value.path == path
    assert not isinstance(info.value, MethodNotAllowed)


# (templates, path, expected winner) for GET under the default profile. The tie-breaking
# rules (transcoding/matcher.py's docstring, README "How requests map to gRPC"):
#   1. segment by segment, left to right: literal beats '*' beats '**';
#   2. a '**' ends as early as it can: of two '**' templates the one with the longer
#      tail wins (it has a tail segment where the other still has '**');
#   3. a template ending at the path's end beats a '**' matching nothing there;
#   4. a verb's templates before those without a verb (see VERBS).
# Each row is checked with the templates added in every order.
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
    # '**' followed by more segments.
    (["/a/**/b", "/a/*/b"], "/a/x/b", "/a/*/b"),  # '*' beats '**' at segment 1
    (["/a/**/b", "/a/*/b"], "/a/x/y/b", "/a/**/b"),
    (["/a/**/b/c", "/a/**/c"], "/a/x/b/c", "/a/**/b/c"),  # longer tail first
    (["/a/**/b/c", "/a/**/c"], "/a/x/y/c", "/a/**/c"),
    (["/a/**/*/c", "/a/**/c"], "/a/x/y/c", "/a/**/*/c"),  # '*' in the tail beats the other's '**'
    (["/a/**/*/c", "/a/**/c"], "/a/x/c", "/a/**/c"),  # the longer tail would leave '**' nothing
    (["/a/**/b", "/a/**"], "/a/x/b", "/a/**/b"),
    (["/a/**/b", "/a/**"], "/a/x/c", "/a/**"),
    (["/a/**/b", "/a/**"], "/a/b", "/a/**"),  # before a tail '**' needs a segment (end-only)
    (["/a/**/b", "/a/**"], "/a/b/b", "/a/**/b"),
    (["/a/b/**", "/a/**/c"], "/a/b/c", "/a/b/**"),  # literal 'b' beats '**' at segment 1
    (["/a/b/**", "/a/**/c"], "/a/x/c", "/a/**/c"),
    (["/a/{x=**}/c", "/a/b/{y=**}"], "/a/b/c", "/a/b/{y=**}"),
    (["/**/b", "/a/**"], "/a/b", "/a/**"),
    (["/**/b", "/a/**"], "/x/b", "/**/b"),
    (["/**/b", "/*/b"], "/x/b", "/*/b"),
    (["/**/b", "/*/b"], "/x/y/b", "/**/b"),
    (["/**/b", "/**"], "/b", "/**"),
    (["/**/b", "/**"], "/b/b", "/**/b"),
    (["/**/b:v", "/**:v"], "/x/b:v", "/**/b:v"),
    (["/**/b:v", "/**:v"], "/x/c:v", "/**:v"),
    (["/a/**/x/y", "/a/**/y"], "/a/x/y", "/a/**/y"),
    (["/a/**/x/y", "/a/**/y"], "/a/q/x/y", "/a/**/x/y"),
    (["/a/*/c/**", "/a/**/c/d"], "/a/b/c/d", "/a/*/c/**"),
    (["/a/*/c/**", "/a/**/c/d"], "/a/b/b/c/d", "/a/**/c/d"),
    (["/v1/{name=files/**}/contents", "/v1/{name=files/*}/contents"], "/v1/files/x/contents",
     "/v1/{name=files/*}/contents"),
    (["/v1/{name=files/**}/contents", "/v1/{name=files/*}/contents"], "/v1/files/x/y/contents",
     "/v1/{name=files/**}/contents"),
    (["/v1/{name=files/**}/contents", "/v1/files/x/{f}"], "/v1/files/x/contents", "/v1/files/x/{f}"),
    (["/v1/{name=files/**}/contents", "/v1/{n=**}"], "/v1/files/x/contents", "/v1/{name=files/**}/contents"),
    (["/v1/{name=files/**}/contents", "/v1/{n=**}"], "/v1/other/x/contents", "/v1/{n=**}"),
    (["/v1/{name=files/**}/contents", "/v1/{n=**}"], "/v1/files/contents", "/v1/{n=**}"),
    (["/p/**/*/q", "/p/*/**"], "/p/a/b/q", "/p/*/**"),  # '*' at segment 1 beats '**'
    (["/p/**/*/q", "/p/x/**"], "/p/a/b/q", "/p/**/*/q"),
    (["/n/{x=**}/{y}", "/n/{x=**}/k/{y}"], "/n/a/k/b", "/n/{x=**}/k/{y}"),
    (["/n/{x=**}/{y}", "/n/{x=**}/k/{y}"], "/n/a/j/b", "/n/{x=**}/{y}"),
    (["/n/{x=**}/{y}", "/n/{x=**}/k/{y}"], "/n/k/b", "/n/{x=**}/{y}"),
]


def _orders(templates: list[str]) -> list[tuple[str, ...]]:
    return list(itertools.permutations(templates))


@pytest.mark.parametrize(("templates", "path", "winner"), PRECEDENCE, ids=[f"{t} {p}" for t, p, _ in PRECEDENCE])
def test_precedence_is_independent_of_insertion_order(templates: list[str], path: str, winner: str) -> None:
    for order in _orders(templates):
        matcher = build([("GET", t) for t in order])
        assert matcher.lookup("GET", path).value == f"GET {winner}", order


# The same rules under `empty_double_wildcard: anywhere` (grpc-gateway), where a '**'
# may match nothing before its tail, so the longer tail wins where end-only refuses it.
PRECEDENCE_ANYWHERE = [
    (["/a/**/b", "/a/**"], "/a/b", "/a/**/b"),
    (["/**/b", "/**"], "/b", "/**/b"),
    (["/a/**/*/c", "/a/**/c"], "/a/x/c", "/a/**/*/c"),
    (["/a/**/x/y", "/a/**/y"], "/a/x/y", "/a/**/x/y"),
    (["/v1/{name=files/**}/contents", "/v1/{n=**}"], "/v1/files/contents", "/v1/{name=files/**}/contents"),
    (["/n/{x=**}/{y}", "/n/{x=**}/k/{y}"], "/n/k/b", "/n/{x=**}/k/{y}"),
    (["/a/**/b", "/a/*/b"], "/a/x/b", "/a/*/b"),
    (["/a/b", "/a/**/b"], "/a/b", "/a/b"),
]


@pytest.mark.parametrize(("templates", "path", "winner"), PRECEDENCE_ANYWHERE, ids=[f"{t} {p}" for t, p, _ in PRECEDENCE_ANYWHERE])
def test_precedence_when_double_wildcard_may_be_empty_anywhere(templates: list[str], path: str, winner: str) -> None:
    for order in _orders(templates):
        matcher = build([("GET", t) for t in order], empty_double_wildcard="anywhere")
        assert matcher.lookup("GET", path).value == f"GET {winner}", order


# ---- '**' followed by more segments ---------------------------------------------------

TAIL_ROUTES = [
    ("GET", "/v1/{name=files/**}/contents"),
    ("GET", "/v1/{name=files/**}"),
    ("GET", "/v1/{name=files/**}:download"),
    ("GET", "/a/{b=**}/d/e"),
    ("GET", "/{x=**}/tail:verb"),
    ("GET", "/foo/**/b:verb"),
    ("GET", "/foo/**"),
    ("GET", "/c/{x=*}/{y=d/**}/e"),
    ("GET", "/c/{x=*}/{y=d/**}/e:verb"),
    ("GET", "/f/{x=*}/{y=**}/g"),
    ("GET", "/m/{x=b/*/y/z/**}/end"),
    ("GET", "/m/{x=b/*/**/y/z}/end"),
    ("GET", "/n/{x=**}/{y}"),
    ("GET", "/n/{x=**}/k/{y}"),
    ("GET", "/p/**/*/q"),
    ("POST", "/p/**/*/q"),
    ("DELETE", "/v1/{name=files/**}/contents"),
]


def r(text: str, **values: str) -> tuple[str, list]:
    return (f"GET {text}", b(**values))


# (path, expected) that hold under both empty_double_wildcard values.
TAILS = [
    ("/v1/files/a/contents", r("/v1/{name=files/**}/contents", name="files/a")),
    ("/v1/files/a/b/c/contents", r("/v1/{name=files/**}/contents", name="files/a/b/c")),
    ("/v1/files/contents/contents", r("/v1/{name=files/**}/contents", name="files/contents")),
    ("/v1/files/a/b", r("/v1/{name=files/**}", name="files/a/b")),
    ("/v1/files/a/contents/b", r("/v1/{name=files/**}", name="files/a/contents/b")),
    ("/v1/files/a:download", r("/v1/{name=files/**}:download", name="files/a")),
    ("/v1/files/a/contents:download", r("/v1/{name=files/**}:download", name="files/a/contents")),
    ("/v1/files/a/contents/", r("/v1/{name=files/**}/contents", name="files/a")),  # trailing '/' dropped
    ("/v1/other/a/contents", "404"),
    ("/a/x/d/e", r("/a/{b=**}/d/e", b="x")),
    ("/a/x/y/d/e", r("/a/{b=**}/d/e", b="x/y")),
    ("/a/d/e/d/e", r("/a/{b=**}/d/e", b="d/e")),
    ("/a/x/d", "404"),
    ("/a/x/d/e/f", "404"),
    ("/a/x/d/f", "404"),
    ("/q/r/tail:verb", r("/{x=**}/tail:verb", x="q/r")),
    ("/tail/tail:verb", r("/{x=**}/tail:verb", x="tail")),
    ("/q/r/tail", "404"),
    ("/foo/a/b:verb", r("/foo/**/b:verb")),
    ("/foo/a/c/b:verb", r("/foo/**/b:verb")),
    ("/foo/a/b", r("/foo/**")),
    ("/foo/a/c:verb", r("/foo/**")),  # the verb's templates fail; ':verb' is data for '**'
    ("/foo", r("/foo/**")),
    ("/c/h/d/x/y/e", r("/c/{x=*}/{y=d/**}/e", x="h", y="d/x/y")),
    ("/c/h/d/x/e", r("/c/{x=*}/{y=d/**}/e", x="h", y="d/x")),
    ("/c/h/d/x/y/e:verb", r("/c/{x=*}/{y=d/**}/e:verb", x="h", y="d/x/y")),
    ("/c/h/x/y/e", "404"),
    ("/f/a/b/c/g", r("/f/{x=*}/{y=**}/g", x="a", y="b/c")),
    ("/f/a/b/g", r("/f/{x=*}/{y=**}/g", x="a", y="b")),
    ("/m/b/1/y/z/w/end", r("/m/{x=b/*/y/z/**}/end", x="b/1/y/z/w")),
    ("/m/b/1/w/y/z/end", r("/m/{x=b/*/**/y/z}/end", x="b/1/w/y/z")),
    ("/m/b/1/v/w/y/z/end", r("/m/{x=b/*/**/y/z}/end", x="b/1/v/w/y/z")),
    ("/n/a/b", r("/n/{x=**}/{y}", x="a", y="b")),
    ("/n/a/b/c", r("/n/{x=**}/{y}", x="a/b", y="c")),
    ("/n/a/k/b", r("/n/{x=**}/k/{y}", x="a", y="b")),
    ("/n/a/b/k/c", r("/n/{x=**}/k/{y}", x="a/b", y="c")),
    ("/p/a/b/q", r("/p/**/*/q")),
    ("/p/a/b/c/q", r("/p/**/*/q")),
]


# (path, expected under end-only (Envoy), expected under anywhere (grpc-gateway)).
TAILS_EMPTY = [
    ("/v1/files/contents", r("/v1/{name=files/**}", name="files/contents"), r("/v1/{name=files/**}/contents", name="files/")),
    ("/v1/files", r("/v1/{name=files/**}", name="files"), r("/v1/{name=files/**}", name="files/")),
    ("/v1/files:download", r("/v1/{name=files/**}:download", name="files"), r("/v1/{name=files/**}:download", name="files/")),
    ("/a/d/e", "404", r("/a/{b=**}/d/e", b="")),
    ("/tail:verb", "404", r("/{x=**}/tail:verb", x="")),
    ("/foo/b:verb", r("/foo/**"), r("/foo/**/b:verb")),
    ("/c/h/d/e", "404", r("/c/{x=*}/{y=d/**}/e", x="h", y="d/")),
    ("/c/h/d/e:verb", "404", r("/c/{x=*}/{y=d/**}/e:verb", x="h", y="d/")),
    ("/f/a/g", "404", r("/f/{x=*}/{y=**}/g", x="a", y="")),
    ("/m/b/1/y/z/end", "404", r("/m/{x=b/*/y/z/**}/end", x="b/1/y/z/")),
    ("/n/k/b", r("/n/{x=**}/{y}", x="k", y="b"), r("/n/{x=**}/k/{y}", x="", y="b")),
    ("/n/b", "404", r("/n/{x=**}/{y}", x="", y="b")),
    ("/p/b/q", "404", r("/p/**/*/q")),
]


@pytest.mark.parametrize("empty", ["end-only", "anywhere"])
@pytest.mark.parametrize(("path", "expected"), TAILS, ids=[p for p, _ in TAILS])
def test_double_wildcard_followed_by_segments(path: str, expected: object, empty: str) -> None:
    assert outcome(build(TAIL_ROUTES, empty_double_wildcard=empty), "GET", path) == expected


@pytest.mark.parametrize(("path", "end_only", "anywhere"), TAILS_EMPTY, ids=[p for p, _, _ in TAILS_EMPTY])
def test_double_wildcard_matching_nothing_before_a_tail(path: str, end_only: object, anywhere: object) -> None:
    assert outcome(build(TAIL_ROUTES), "GET", path) == end_only
    assert outcome(build(TAIL_ROUTES, empty_double_wildcard="anywhere"), "GET", path) == anywhere


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/p/a/b/q", ["GET", "POST"]),
        ("PUT", "/v1/files/a/contents", ["DELETE", "GET"]),
        ("POST", "/v1/files/a/b/contents", ["DELETE", "GET"]),
        ("DELETE", "/v1/files/a/b", ["GET"]),  # only {name=files/**} (GET) matches
    ],
)
def test_method_not_allowed_through_a_tail(method: str, path: str, allowed: list[str]) -> None:
    assert outcome(build(TAIL_ROUTES), method, path) == ("405", allowed)


def test_method_not_allowed_sees_an_empty_double_wildcard_only_where_allowed() -> None:
    routes = [("GET", "/a/**/b"), ("POST", "/a/**")]
    assert outcome(build(routes), "PUT", "/a/b") == ("405", ["POST"])
    assert outcome(build(routes, empty_double_wildcard="anywhere"), "PUT", "/a/b") == ("405", ["GET", "POST"])


# ---- verbs ------------------------------------------------------------------------------

VERB_ROUTES = [
    ("GET", "/person"),
    ("GET", "/person/{id=*}"),
    ("GET", "/person/{id=*}/name"),
    ("GET", "/{x=**}:verb"),
    ("POST", "/v1/books:search"),
    ("GET", "/v1/books/{id}"),
    ("GET", "/tags/{tag}"),
    ("POST", "/tags/{tag}:rename"),
    ("GET", "/files/{path=**}"),
    ("GET", "/files/{path=**}:zip"),
    ("GET", "/foo/{id=*}"),
    ("GET", "/foo/{id=*}:lock"),
]

DECLARED, ANY, FALLBACK = "declared", "any", "declared-or-segment"


def same(expected: object) -> dict[str, object]:
    return {DECLARED: expected, ANY: expected, FALLBACK: expected}


# (method, path, expected per custom_verbs mode): Envoy's CustomVerbIssue,
# MatchUnregisteredCustomVerb and CustomVerbMatch* cases and grpc-gateway's mux verb
# cases, on our own routes.
VERBS = [
    ("GET", "/person:verb", same(r("/{x=**}:verb", x="person"))),
    ("GET", "/person/jason:verb", same(r("/{x=**}:verb", x="person/jason"))),
    ("GET", "/animal/cat:verb", same(r("/{x=**}:verb", x="animal/cat"))),
    ("GET", "/person", same(r("/person"))),
    ("GET", "/person/jason", same(r("/person/{id=*}", id="jason"))),
    ("GET", "/animal", same("404")),
    ("GET", "/person:other", same("404")),
    ("GET", "/person/jason:other",
     {DECLARED: r("/person/{id=*}", id="jason:other"), ANY: "404", FALLBACK: r("/person/{id=*}", id="jason:other")}),
    ("GET", "/person/jason:verb/name", same(r("/person/{id=*}/name", id="jason:verb"))),  # not the last segment
    ("GET", "/some:verb/const:verb", same(r("/{x=**}:verb", x="some:verb/const"))),
    ("GET", "/person/a:verb:verb", same(r("/{x=**}:verb", x="person/a:verb"))),
    ("GET", "/v1/books/12:search", {DECLARED: "404", ANY: "404", FALLBACK: r("/v1/books/{id}", id="12:search")}),
    ("POST", "/v1/books:search", same(("POST /v1/books:search", []))),
    ("GET", "/v1/books:search", same(("405", ["POST"]))),
    ("GET", "/tags/t1:rename", {DECLARED: ("405", ["POST"]), ANY: ("405", ["POST"]), FALLBACK: r("/tags/{tag}", tag="t1:rename")}),
    ("POST", "/tags/t1:rename", same(("POST /tags/{tag}:rename", b(tag="t1")))),
    ("POST", "/tags/:rename", same("404")),  # Envoy: '/tags' + verb; grpc-gateway: 404 outright
    ("GET", "/tags/:rename", {DECLARED: "404", ANY: "404", FALLBACK: r("/tags/{tag}", tag=":rename")}),
    ("GET", "/files/a/b:zip", same(r("/files/{path=**}:zip", path="a/b"))),
    ("GET", "/files:zip", same(r("/files/{path=**}:zip", path=""))),
    ("GET", "/files/a:%7Aip", same(r("/files/{path=**}:zip", path="a"))),  # verbs compare normalised
    ("GET", "/files/a/b:unzip", {DECLARED: r("/files/{path=**}", path="a/b:unzip"), ANY: "404",
                                 FALLBACK: r("/files/{path=**}", path="a/b:unzip")}),
    ("GET", "/files/a%3Azip", same(r("/files/{path=**}", path="a%3Azip"))),  # %3A is data (and reserved)
    ("GET", "/files/a/b:", same(r("/files/{path=**}", path="a/b:"))),  # an empty verb is no verb
    ("GET", "/foo/bar:lock", same(r("/foo/{id=*}:lock", id="bar"))),
    ("GET", "/foo/bar", same(r("/foo/{id=*}", id="bar"))),
    ("GET", "/foo/bar:123", {DECLARED: r("/foo/{id=*}", id="bar:123"), ANY: "404", FALLBACK: r("/foo/{id=*}", id="bar:123")}),
    ("GET", "/foo/bar:lock/x", "skip"),
]
VERBS = [row for row in VERBS if row[2] != "skip"]


@pytest.mark.parametrize("mode", [DECLARED, ANY, FALLBACK])
@pytest.mark.parametrize(("method", "path", "expected"), VERBS, ids=[f"{m} {p}" for m, p, _ in VERBS])
def test_custom_verbs(method: str, path: str, expected: dict[str, object], mode: str) -> None:
    assert outcome(build(VERB_ROUTES, custom_verbs=mode), method, path) == expected[mode]


def test_profiles_pick_their_anchor_verb_rules() -> None:
    assert PROFILES["envoy"].custom_verbs.value == DECLARED
    assert PROFILES["grpc-gateway"].custom_verbs.value == FALLBACK
    assert PROFILES["edge"].custom_verbs.value == FALLBACK


# ---- percent-decoding -------------------------------------------------------------------

# (template, raw path, expected value per path_unescape mode; one value: the same in all).
def per_mode(reserved: object, slash: object = None, everything: object = None, legacy: object = None) -> dict[str, object]:
    slash = reserved if slash is None else slash
    everything = slash if everything is None else everything
    legacy = everything if legacy is None else legacy
    return {"all-except-reserved": reserved, "all-except-slash": slash, "all-characters": everything, "legacy": legacy}


ALL_RESERVED_ESCAPED = "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"
DECODING = [
    # One-segment variables are fully decoded, %2F included (under legacy %2F splits the path).
    ("/v1/{x}", "/v1/p%20q%2Fr", per_mode("p q/r", legacy="404")),
    ("/v1/{x}", "/v1/a%2fb", per_mode("a/b", legacy="404")),
    ("/v1/{x}", "/v1/%21%23%24%26%27%28%29%2A%2B%2C%3A%3B%3D%3F%40%5B%5D", per_mode("!#$&'()*+,:;=?@[]")),
    ("/v1/{x}", "/v1/caf%C3%A9", per_mode("caf\u00e9")),
    ("/v1/{x}", "/v1/%E2%82%AC100", per_mode("\u20ac100")),
    ("/v1/{x}", "/v1/a+b", per_mode("a+b")),  # '+' is not a space in paths
    ("/v1/{x}", "/v1/%25", per_mode("%")),
    ("/v1/{x}", "/v1/%2525", per_mode("%25")),  # decoded once only
    ("/v1/{x=*}", "/v1/%7Efoo", per_mode("~foo")),
    ("/v1/{x}/c", "/v1/p%20q%2Fr+/c", per_mode("p q/r+", legacy="404")),  # Envoy's single-segment case
    ("/foo/{id}/bar", "/foo/part1%2Fpart2/bar", per_mode("part1/part2", legacy="404")),  # grpc-gateway's
    # Multi-segment variables: the modes differ.
    ("/v1/{x=**}", "/v1/p/foo%20foo/q/bar%2Fbar", per_mode("p/foo foo/q/bar%2Fbar", everything="p/foo foo/q/bar/bar")),
    ("/v1/{x=**}", "/v1/a%2fb", per_mode("a%2fb", everything="a/b")),  # one segment, but '**' is multi-segment
    ("/v1/{x=**}", "/v1/%21%23%3A%40%2F", per_mode("%21%23%3A%40%2F", "!#:@%2F", "!#:@/", "!#:@")),  # legacy: a trailing '/'

    ("/v1/{x=**}", "/v1/caf%C3%A9/%E2%82%AC", per_mode("caf\u00e9/\u20ac")),
    ("/v1/{x=**}", "/v1/a%20b%3Fc%3fd", per_mode("a b%3Fc%3fd", "a b?c?d")),  # kept escapes keep their case
    ("/v1/{x=**}", "/v1/%41%2B%61", per_mode("A%2Ba", "A+a")),
    ("/v1/{x=a/*}", "/v1/a/b%2Fc%20d", per_mode("a/b%2Fc d", everything="a/b/c d", legacy="404")),
    ("/v1/{x=shelves/*/books/*}", "/v1/shelves/s%2F1/books/b%3F",
     per_mode("shelves/s%2F1/books/b%3F", "shelves/s%2F1/books/b?", "shelves/s/1/books/b?", "404")),
    ("/v1/{x=shelves/*}", "/v1/%73helves/1", per_mode("shelves/1")),
    ("/a/{x=p/*/q/*}/c", "/a/p/foo%20foo/q/bar%2Fbar/c",
     per_mode("p/foo foo/q/bar%2Fbar", everything="p/foo foo/q/bar/bar", legacy="404")),
    ("/a/{x=**}/c", "/a/p/foo%20foo/q/bar%2Fbar+/c", per_mode("p/foo foo/q/bar%2Fbar+", everything="p/foo foo/q/bar/bar+")),
    ("/foo/{id=**}", "/foo/test%2Fbar", per_mode("test%2Fbar", everything="test/bar")),  # grpc-gateway's
    ("/foo/{id=**}", "/foo/success%2fwith%2Fspace", per_mode("success%2fwith%2Fspace", everything="success/with/space")),
    # Malformed escapes stay verbatim, as Envoy leaves them (legacy refuses them: see below).
    ("/v1/{x}", "/v1/%zz", per_mode("%zz", legacy=MalformedEscape)),
    ("/v1/{x}", "/v1/ab%4", per_mode("ab%4", legacy=MalformedEscape)),
    ("/v1/{x}", "/v1/%", per_mode("%", legacy=MalformedEscape)),
    ("/v1/{x}", "/v1/%20%g1", per_mode(" %g1", legacy=MalformedEscape)),
    ("/v1/{x=**}", "/v1/a/%zz/%2", per_mode("a/%zz/%2", legacy=MalformedEscape)),
    # Verbs are split off before decoding: %3A is data (legacy decodes first, so it splits).
    ("/v1/{x}:go", "/v1/a%3Ab:go", per_mode("a:b")),
    ("/v1/{x=**}:go", "/v1/a/b%3Ac:go", per_mode("a/b%3Ac", "a/b:c")),
    ("/v1/{x}:go", "/v1/a%3Ago", per_mode("404", legacy="a")),
    # '**' followed by more segments decodes like any multi-segment variable.
    ("/v1/{x=files/**}/contents", "/v1/files/a%2Fb/c%3Fd/contents",
     per_mode("files/a%2Fb/c%3Fd", "files/a%2Fb/c?d", "files/a/b/c?d", "files/a/b/c?d")),
]


@pytest.mark.parametrize("mode", UNESCAPE_MODES)
@pytest.mark.parametrize(("template", "path", "expected"), DECODING, ids=[p for _, p, _ in DECODING])
def test_percent_decoding_of_bindings(template: str, path: str, expected: dict[str, object], mode: str) -> None:
    matcher = build([("GET", template)], path_unescape=mode)
    want = expected[mode]
    if want is MalformedEscape:
        with pytest.raises(MalformedEscape) as info:
            matcher.lookup("GET", path)
        assert info.value.path == path and "malformed percent-escape" in str(info.value)
        return
    assert outcome(matcher, "GET", path) == ("404" if want == "404" else (f"GET {template}", [(("x",) if "{x" in template else ("id",), want)]))


@pytest.mark.parametrize("mode", UNESCAPE_MODES)
def test_every_ascii_escape_in_one_segment_is_decoded(mode: str) -> None:
    """Envoy's PercentEscapesUnescapedForSingleSegmentAllAsciiChars: %00-%7E, both hex cases."""
    matcher = build([("GET", "/{x}")], path_unescape=mode)
    for code in range(0x7F):
        for hex_digits in (f"{code:02X}", f"{code:02x}"):
            path = "/%" + hex_digits
            if mode == "legacy" and chr(code) == "/":
                assert outcome(matcher, "GET", path) == "404"  # decoded before routing: it splits
                continue
            assert matcher.lookup("GET", path).bindings == [(("x",), chr(code))], path


@pytest.mark.parametrize(
    ("mode", "y"),
    [
        ("all-except-reserved", ALL_RESERVED_ESCAPED),
        ("all-except-slash", "!#$&'()*+,%2F:;=?@[]"),
        ("all-characters", RESERVED),
    ],
)
def test_reserved_characters_in_a_multi_segment_variable(mode: str, y: str) -> None:
    """Envoy's MultiSegmentMatchWithReservedCharacters for each url_unescape_spec: a one-segment
    variable is always fully decoded; the multi-segment one keeps what the mode keeps."""
    matcher = build([("GET", "/a/{x=*}/{y=**}/c")], path_unescape=mode)
    match = matcher.lookup("GET", f"/a/{ALL_RESERVED_ESCAPED}/{ALL_RESERVED_ESCAPED}/c")
    assert match.bindings == [(("x",), RESERVED), (("y",), y)]


def test_legacy_decodes_the_whole_path_before_routing() -> None:
    """grpc-gateway's default (UnescapingModeLegacy): the same path splits at the decoded '/'."""
    matcher = build([("GET", "/a/{x=*}/{y=**}/c")], path_unescape="legacy")
    match = matcher.lookup("GET", f"/a/{ALL_RESERVED_ESCAPED}/{ALL_RESERVED_ESCAPED}/c")
    assert match.bindings == [(("x",), "!#$&'()*+,"), (("y",), ":;=?@[]/!#$&'()*+,/:;=?@[]")]


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v1/a%20b", "/v1/a%20b"),
        ("/v1/a%20b", "/v1/%61%20%62"),
        ("/v1/x", "/v1/%78"),
        ("/v1/a%2Fb", "/v1/a%2Fb"),  # the template's literal decodes to 'a/b' and never matches one segment
    ],
)
def test_legacy_compares_literals_decoded(template: str, path: str) -> None:
    matcher = build([("GET", template)], path_unescape="legacy")
    expected = "404" if "%2F" in template else (f"GET {template}", [])
    assert outcome(matcher, "GET", path) == expected


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
    ("/a/**/b", "/a/{x=**}/b", True),
    ("/{x=**}/tail:verb", "/**/tail:verb", True),
    ("/v1/{name=files/**}/contents", "/v1/files/{rest=**}/contents", True),
    ("/a/**/*/b", "/a/**/{c}/b", True),
    ("/a/**/b", "/a/**/c", False),
    ("/a/**/b", "/a/*/b", False),
    ("/a/**", "/a/**/b", False),
    ("/a/**/b", "/a/**/b:v", False),
    ("/a/**/b", "/**/a/b", False),
    ("/a/**/b/c", "/a/**/c", False),
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


_ANY_CHAR = st.characters(blacklist_categories=("Cs",))
_NO_SLASH = st.characters(blacklist_categories=("Cs",), blacklist_characters="/")


@pytest.mark.parametrize("mode", UNESCAPE_MODES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_single_segment_round_trip(mode: str, data: st.DataObject) -> None:
    """Whatever a client encodes with http.proto's {var} rule comes back intact (under
    legacy a '/' in the value would split the path, so it has none there)."""
    value = data.draw(st.text(_NO_SLASH if mode == "legacy" else _ANY_CHAR, min_size=1, max_size=20))
    match = build([("GET", "/v1/{x}")], path_unescape=mode).lookup("GET", "/v1/" + quote(value, safe="-_.~"))
    assert match.bindings == [(("x",), value)]


def _as_envoy_keeps(value: str) -> str:
    """A value as all-except-reserved hands it on when the client encoded every reserved
    character but '/': those escapes stay, in the upper-case hex quote() writes."""
    return "".join(quote(c, safe="") if c in RESERVED and c != "/" else c for c in value)


@pytest.mark.parametrize("mode", UNESCAPE_MODES)
@settings(max_examples=150, deadline=None)
@given(segments=st.lists(st.text(_NO_SLASH, min_size=1, max_size=8), min_size=1, max_size=5))
def test_multi_segment_round_trip(mode: str, segments: list[str]) -> None:
    """http.proto's {+var} rule: encode all but [-_.~/0-9a-zA-Z]; the '/'s stay separators.
    Every mode but all-except-reserved gives the value back; that one (Envoy's default)
    keeps the reserved characters' escapes for the backend to decode."""
    value = "/".join(segments)
    match = build([("GET", "/v1/{x=**}")], path_unescape=mode).lookup("GET", "/v1/" + quote(value, safe="-_.~/"))
    assert match.bindings == [(("x",), _as_envoy_keeps(value) if mode == "all-except-reserved" else value)]


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


def _trie_size(matcher: PathMatcher) -> int:
    """Nodes in the matcher's tries, tails included: the most a lookup attempt may visit."""
    count, stack = 0, [matcher._root]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.literals.values())
        if node.single is not None:
            stack.append(node.single)
        if node.multi is not None:
            stack.extend(tail.root for tail in node.multi.by_length)
    return count


@pytest.mark.parametrize("empty", ["end-only", "anywhere"])
def test_double_wildcard_lookups_do_bounded_work(monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    """Hostile paths of ever more segments against many '**' templates whose tails all
    look alike: the work (trie nodes visited, counted, not timed) depends on the route
    table, not on the path's length. A matcher that searched for where each '**' ends
    would do work growing with the path for every one of them."""
    templates = [
        "/**/a/b/c", "/**/a/*/c", "/a/**/b", "/a/**/*/b", "/{x=**}/z:verb", "/a/a/**/a/a",
        "/a/*/**/a/*/a/q", "/**/a/a/a/a/a/a/a/a/x", "/a/{x=**}/{y}/{z}/q", "/{x=a/**}/a/a/a/b",
        "/a/a/a/{x=**}/a/*/*/*/c", "/*/*/*/**/*/*/*/d",
    ]
    matcher = build([("GET", t) for t in templates] + [("POST", "/**/zzz")], empty_double_wildcard=empty)
    budget = _trie_size(matcher)
    visits = {"n": 0}
    real_find, real_collect = matcher_module._find, matcher_module._collect

    def counting_find(*args):  # type: ignore[no-untyped-def]
        visits["n"] += 1
        return real_find(*args)

    def counting_collect(*args):  # type: ignore[no-untyped-def]
        visits["n"] += 1
        return real_collect(*args)

    monkeypatch.setattr(matcher_module, "_find", counting_find)
    monkeypatch.setattr(matcher_module, "_collect", counting_collect)
    shapes = {
        "no match": lambda n: "/a" * n + "/nothing",
        "405": lambda n: "/a" * n + "/zzz",
        "verb": lambda n: "/a" * n + "/b:verb",
        "late match": lambda n: "/a" * n + "/a/a/a/a/a/a/a/a/x",
    }
    for name, shape in shapes.items():
        counts = []
        for n in (50, 500, 5000, 50_000):
            visits["n"] = 0
            try:
                matcher.lookup("GET", shape(n))
            except (NoRoute, MethodNotAllowed):
                pass
            counts.append(visits["n"])
        assert counts[1] == counts[2] == counts[3], (name, counts)  # flat in the path's length
        assert counts[3] <= 2 * 2 * budget, (name, counts, budget)  # two attempts, find + collect
