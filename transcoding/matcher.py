"""Route lookup for ``google.api.http`` templates: one segment trie for all routes.

The anchors: Envoy's transcoder (grpc-httpjson-transcoding's path_matcher) and
grpc-gateway's `runtime.ServeMux`. Where they differ the matcher follows
`TranscodingOptions` (``path_unescape``, ``custom_verbs``,
``empty_double_wildcard``); the rules below hold under every profile.

Which template wins (tie-breaking), when several match the same path:

1. Segment by segment, left to right, the first segment where the candidates
   differ decides: a literal beats ``*``, and ``*`` beats ``**``. So
   ``/v1/shelves/featured`` beats ``/v1/shelves/{shelf}``, ``/a/*/c`` beats
   ``/a/**/c``, and ``/a/b/{x=**}`` beats ``/a/{x=**}/c`` for ``/a/b/c``.
2. A ``**`` followed by more segments (``/v1/{name=files/**}/contents``) ends
   as early as it can: the segments after it are a fixed-length tail, so of two
   ``**`` templates with the same prefix the one with the longer tail is tried
   first -- at the first differing segment it has a tail segment where the other
   still has ``**`` (rule 1). Envoy's matcher reaches the same answer by trying
   the shortest ``**`` first; grpc-gateway tries templates in registration
   order, which a gateway reading descriptors cannot reproduce (``edge check``
   warns about templates whose order would matter there).
3. A template that ends at the path's end beats a ``**`` matching nothing there
   (``/a`` beats ``/a/**`` for ``/a``).
4. With a verb split off (see ``custom_verbs``), the verb's templates are tried
   before any template without a verb.
5. Each HTTP method is matched on its own: a ``GET`` falls back to
   ``/v1/{id}`` when ``/v1/search`` only exists for ``POST``.

A ``**`` at a template's end matches zero or more segments; one followed by more
segments matches one or more (Envoy) or zero or more (grpc-gateway), per
``empty_double_wildcard``. The lookup is bounded: every trie edge consumes one
segment, so a node is only ever reached at one depth and is visited at most once
per attempt (two attempts at most, see verbs), and a ``**`` node checks each of
its tail tries once, against the path's last segments. The work is the size of
the route table at most, whatever the path (plus splitting it): no backtracking
over where a ``**`` ends.

Paths:

* Trailing empty segments are dropped as Envoy does (``/v1/books/`` is
  ``/v1/books``; ``/`` is the root). Empty inner segments (``/a//b``) are kept:
  only a wildcard can match them, binding ``""``.
* Literals (and verbs) are compared after RFC 3986 normalisation: escapes of
  unreserved characters are decoded, other escapes get upper-case hex. Under
  ``path_unescape: legacy`` the whole path is decoded first (grpc-gateway's
  default), so ``%2F`` separates segments, ``%3A`` can start a verb, literals
  compare decoded, and a malformed escape is a client error
  (:class:`MalformedEscape`), as Go's HTTP server refuses it.
* Verbs: only a literal ``:`` after the last ``/`` can start one (``%3A`` is data,
  except under ``legacy``). ``declared``: a verb some template declares is split
  off and only its templates are tried; ``any``: any ``:xyz`` is split off;
  ``declared-or-segment``: a declared verb's templates are tried first, then the
  others with ``:xyz`` kept in the last segment (``/v1/{name}`` matches
  ``/v1/a:b``), and a last segment that is only ``:verb`` for a verb declared for
  the request's method is a 404, as grpc-gateway answers.

Variable values:

* A variable bound to one segment (``{x}``, ``{x=*}``) is fully percent-decoded
  (``%2F`` -> ``/``). A variable spanning several (``{x=**}``, ``{x=a/*}``, or
  a ``**`` matching one) is decoded per ``path_unescape``: RFC 6570 reserved
  escapes kept as sent (``all-except-reserved``), ``%2F`` kept
  (``all-except-slash``), or everything decoded (``all-characters``).
* Malformed escapes (``%zz``, a truncated ``%4``) are kept verbatim, as Envoy
  does (except under ``legacy``, above). Escapes that decode to invalid UTF-8
  are a client error: :class:`PathEncodingError`.
* Under ``empty_double_wildcard: anywhere`` a ``**`` that matched nothing still
  counts as one empty segment of its variable, as grpc-gateway joins it:
  ``{name=files/**}`` binds ``files/`` for ``/files/contents`` with
  ``/v1/{name=files/**}/contents``; under ``end-only`` it adds nothing
  (``{name=operations/**}`` binds ``operations`` for ``/v1/operations``).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar
from urllib.parse import unquote, unquote_to_bytes

from transcoding.options import CustomVerbs, EmptyDoubleWildcard, PathUnescape, TranscodingOptions
from transcoding.template import PathTemplate

__all__ = [
    "Binding",
    "MalformedEscape",
    "Match",
    "MethodNotAllowed",
    "NoRoute",
    "PathEncodingError",
    "PathMatcher",
    "RouteConflict",
    "normalize_segment",
]

T = TypeVar("T")

_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_HEX = frozenset(string.hexdigits)
_MALFORMED_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")
_NONE: dict = {}
_DEFAULT_OPTIONS = TranscodingOptions()


def _kept_escapes(chars: str) -> re.Pattern[str]:
    """A splitter whose odd pieces are the escapes of `chars`, in either hex case."""
    return re.compile("(%(?:" + "|".join(f"{ord(c):02X}" for c in chars) + "))", re.IGNORECASE)


_KEPT = {mode: _kept_escapes(mode.kept_escapes) for mode in PathUnescape if mode.kept_escapes}


class NoRoute(LookupError):
    """No template matches the path for any HTTP method (HTTP 404)."""

    def __init__(self, http_method: str, path: str) -> None:
        self.http_method = http_method
        self.path = path
        super().__init__(f"no route matches {http_method} {path}")


class MethodNotAllowed(LookupError):
    """The path matches, but only for other HTTP methods (HTTP 405 with ``Allow``)."""

    def __init__(self, http_method: str, path: str, allowed: list[str]) -> None:
        self.http_method = http_method
        self.path = path
        self.allowed = allowed
        super().__init__(f"{http_method} is not allowed for {path}; allowed: {', '.join(allowed)}")


class PathEncodingError(ValueError):
    """A path variable's percent-escapes decode to invalid UTF-8 (HTTP 400)."""

    def __init__(self, field_path: str, raw: str) -> None:
        self.field_path = field_path
        self.raw = raw
        super().__init__(f"path variable {field_path!r} is not valid UTF-8 once percent-decoded: {raw!r}")


class MalformedEscape(ValueError):
    """A '%' not followed by two hex digits where the whole path must be decoded (HTTP 400)."""

    def __init__(self, path: str, position: int) -> None:
        self.path = path
        self.position = position
        super().__init__(
            f"request path {path!r} holds a malformed percent-escape {path[position:position + 3]!r} at {position}"
        )


class RouteConflict(ValueError):
    """Two templates for one HTTP method match exactly the same paths."""

    def __init__(self, http_method: str, template: PathTemplate, existing_template: PathTemplate, existing: object) -> None:
        self.http_method = http_method
        self.template = template
        self.existing_template = existing_template
        self.existing = existing
        super().__init__(
            f"{http_method} {template.text} conflicts with {http_method} {existing_template.text}: "
            "they match the same paths"
        )


# What a lookup returns per variable: (field path in proto names, value decoded per path_unescape).
# A plain tuple, as is `_Attempt`: both are built on every lookup, and as NamedTuples (even
# built with tuple.__new__) the mix of scripts/bench_matcher.py ran 6% slower, 16% with both.
Binding = tuple[tuple[str, ...], str]
_Attempt = tuple[list[str], list[str], str | None]  # (segments as sent, their comparison keys, the verb)


@dataclass
class Match(Generic[T]):
    value: T
    bindings: list[Binding]


_Decoder = Callable[[list[str], tuple[str, ...]], str]  # a variable's segments -> its value


@dataclass(frozen=True, slots=True)
class _Variable:
    """One variable of a template, precomputed at add() so a lookup only slices and decodes.

    A slotted class, not a NamedTuple: unpacking a tuple subclass misses CPython's fast path
    (lookups with variables ran ~4% slower in scripts/bench_matcher.py); `span` and `moves`
    let the common case (the path as long as the template) read three attributes."""

    field_path: tuple[str, ...]
    decode: _Decoder
    span: slice  # its segments when the path has the template's length
    moves: bool  # whether a path of another length moves it: the fields below say how
    start: int  # template segment index
    start_shifts: bool  # lies after the '**': moves with the path's length
    end: int
    end_shifts: bool
    gap: int  # where a '**' that matched nothing leaves an empty segment (anywhere mode; -1: never)


@dataclass(frozen=True, slots=True)
class _Route(Generic[T]):
    template: PathTemplate
    value: T
    length: int  # the template's segment count ('**' counts one)
    variables: tuple[_Variable, ...]


class _Node:
    __slots__ = ("literals", "single", "multi", "routes", "methods")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.single: _Node | None = None
        self.multi: _Tails | None = None  # a '**' here, and what may follow it
        self.routes: dict[str | None, dict[str, _Route]] = {}  # verb -> method -> route
        self.methods: set[str] = set()  # methods with a route somewhere in this subtree


@dataclass(frozen=True, slots=True)
class _Tail:
    """The trie of the segments after a '**' when there are `length` of them."""

    length: int
    root: _Node


class _Tails:
    """What follows one '**': a trie (literals and '*' only) per tail length, longest first."""

    __slots__ = ("by_length", "methods")

    def __init__(self) -> None:
        self.by_length: list[_Tail] = []
        self.methods: set[str] = set()

    def root(self, length: int) -> _Node:
        for tail in self.by_length:
            if tail.length == length:
                return tail.root
        node = _Node()
        self.by_length.append(_Tail(length, node))
        self.by_length.sort(key=lambda tail: -tail.length)
        return node


class PathMatcher(Generic[T]):
    """Maps (HTTP method, request path) to the value registered with the best template.

    Built once per route table; `options` decides the path rows of
    transcoding/options.py (decoding, verbs, empty ``**``)."""

    def __init__(self, options: TranscodingOptions | None = None) -> None:
        options = options or _DEFAULT_OPTIONS
        self.options = options
        self._root = _Node()
        self._verbs: dict[str, set[str]] = {}  # normalised verb -> HTTP methods declaring it
        self._legacy = options.path_unescape is PathUnescape.LEGACY
        self._verb_mode = options.custom_verbs
        self._empty_anywhere = options.empty_double_wildcard is EmptyDoubleWildcard.ANYWHERE
        if self._legacy:
            self._key: Callable[[str], str] = unquote
            self._multi: _Decoder = _legacy_value
            self._single: _Decoder = _legacy_value
        else:
            self._key = normalize_segment
            kept = _KEPT.get(options.path_unescape)
            self._multi = _decode_all if kept is None else _keeping(kept)
            self._single = _decode_one

    def add(self, http_method: str, template: PathTemplate, value: T) -> None:
        if not http_method or not _TCHAR.issuperset(http_method):
            raise ValueError(f"invalid HTTP method {http_method!r}")
        segments = template.segments
        multi_at = template.double_wildcard
        node = self._root
        visited: list[_Node | _Tails] = [node]
        for i, segment in enumerate(segments):
            if segment.kind == "literal":
                node = node.literals.setdefault(self._key(segment.value), _Node())
            elif segment.kind == "single":
                if node.single is None:
                    node.single = _Node()
                node = node.single
            else:
                if node.multi is None:
                    node.multi = _Tails()
                visited.append(node.multi)
                node = node.multi.root(len(segments) - i - 1)
            visited.append(node)
        verb = self._key(template.verb) if template.verb is not None else None
        by_method = node.routes.setdefault(verb, {})
        existing = by_method.get(http_method)
        if existing is not None:
            raise RouteConflict(http_method, template, existing.template, existing.value)
        by_method[http_method] = _Route(template, value, len(segments), self._variables(template, multi_at))
        for place in visited:
            place.methods.add(http_method)
        if verb is not None:
            self._verbs.setdefault(verb, set()).add(http_method)

    def _variables(self, template: PathTemplate, multi_at: int | None) -> tuple[_Variable, ...]:
        out = []
        for v in template.variables:
            holds_multi = multi_at is not None and v.start <= multi_at < v.end
            spans = holds_multi or v.end - v.start > 1
            gap = multi_at - v.start if holds_multi and self._empty_anywhere and v.end - v.start > 1 else -1  # type: ignore[operator]
            start_shifts = multi_at is not None and v.start > multi_at
            end_shifts = multi_at is not None and v.end > multi_at
            out.append(_Variable(
                field_path=v.field_path,
                decode=self._multi if spans else self._single,
                span=slice(v.start, v.end),
                moves=start_shifts or end_shifts or gap >= 0,
                start=v.start, start_shifts=start_shifts,
                end=v.end, end_shifts=end_shifts,
                gap=gap,
            ))
        return tuple(out)

    def lookup(self, http_method: str, raw_path: str) -> Match[T]:
        """Find the route for a still percent-encoded path (no query string).

        Raises :class:`NoRoute`, :class:`MethodNotAllowed`, :class:`PathEncodingError`
        or :class:`MalformedEscape`.
        """
        path = raw_path
        if self._legacy and "%" in raw_path:
            path = _decode_path(raw_path)
        attempts = self._attempts(http_method, path)
        root = self._root
        if http_method in root.methods:
            anywhere = self._empty_anywhere
            for parts, keys, verb in attempts:
                n = len(keys)
                route = _find(root, keys, 0, n, verb, http_method, anywhere)
                if route is not None:
                    return Match(route.value, _bindings(route, parts, n))
        allowed: set[str] = set()
        for _, keys, verb in attempts:
            _collect(root, keys, 0, len(keys), verb, allowed, self._empty_anywhere)
        if allowed:
            raise MethodNotAllowed(http_method, raw_path, sorted(allowed))
        raise NoRoute(http_method, raw_path)

    def _attempts(self, http_method: str, path: str) -> list[_Attempt]:
        """The (parts, comparison keys, verb) splits of the path to try, in order."""
        if not path.startswith("/"):
            return []
        colon = path.rfind(":")
        if colon > path.rfind("/") and colon < len(path) - 1:
            verb = path[colon + 1 :] if self._legacy else normalize_segment(path[colon + 1 :])
            mode = self._verb_mode
            if mode is CustomVerbs.ANY:
                return [self._split(path[:colon], verb)]
            declared = self._verbs.get(verb)
            if declared is not None:
                if mode is CustomVerbs.DECLARED:
                    return [self._split(path[:colon], verb)]
                if path[colon - 1] == "/":  # the last segment is only ':verb'
                    return [] if http_method in declared else [self._split(path, None)]
                return [self._split(path[:colon], verb), self._split(path, None)]
        return [self._split(path, None)]

    def _split(self, path: str, verb: str | None) -> _Attempt:
        parts = path[1:].split("/")
        while parts and not parts[-1]:
            parts.pop()
        if self._legacy or "%" not in path:
            return parts, parts, verb
        return parts, [normalize_segment(p) for p in parts], verb


def _find(node: _Node, keys: list[str], i: int, n: int, verb: str | None, method: str, anywhere: bool) -> _Route | None:
    """Depth-first search in precedence order: literal, then '*', then '**'."""
    if i == n:
        route = node.routes.get(verb, _NONE).get(method)
        if route is None and node.multi is not None:
            route = _find_tails(node.multi, keys, i, n, verb, method, anywhere)
        return route
    child = node.literals.get(keys[i])
    if child is not None and method in child.methods:
        route = _find(child, keys, i + 1, n, verb, method, anywhere)
        if route is not None:
            return route
    child = node.single
    if child is not None and method in child.methods:
        route = _find(child, keys, i + 1, n, verb, method, anywhere)
        if route is not None:
            return route
    tails = node.multi
    if tails is not None and method in tails.methods:
        return _find_tails(tails, keys, i, n, verb, method, anywhere)
    return None


def _find_tails(tails: _Tails, keys: list[str], i: int, n: int, verb: str | None, method: str, anywhere: bool) -> _Route | None:
    """A '**' at segment i: each tail, longest first, against the path's last segments."""
    room = n - i
    for tail in tails.by_length:
        k, root = tail.length, tail.root
        if k > room or (k == room and k and not anywhere) or method not in root.methods:
            continue
        route = _find(root, keys, n - k, n, verb, method, anywhere)
        if route is not None:
            return route
    return None


def _collect(node: _Node, keys: list[str], i: int, n: int, verb: str | None, out: set[str], anywhere: bool) -> None:
    """Add every method that has some template matching the path (error path only)."""
    if i == n:
        out.update(node.routes.get(verb, ()))
    else:
        for child in (node.literals.get(keys[i]), node.single):
            if child is not None:
                _collect(child, keys, i + 1, n, verb, out, anywhere)
    if node.multi is not None:
        room = n - i
        for tail in node.multi.by_length:
            k = tail.length
            if k < room or (k == room and (anywhere or not k)):
                _collect(tail.root, keys, n - k, n, verb, out, anywhere)


def _bindings(route: _Route, parts: list[str], n: int) -> list[Binding]:
    delta = n - route.length  # how many more segments the '**' took than one
    bindings = []
    for v in route.variables:
        if delta and v.moves:
            pieces = parts[v.start + delta if v.start_shifts else v.start : v.end + delta if v.end_shifts else v.end]
            if v.gap >= 0 and delta == -1:  # a '**' that matched nothing, joined as grpc-gateway does
                pieces.insert(v.gap, "")
        else:
            pieces = parts[v.span]
        field_path = v.field_path
        bindings.append((field_path, v.decode(pieces, field_path)))
    return bindings


def _decode(segment: str, field_path: tuple[str, ...]) -> str:
    if "%" not in segment:
        return segment
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise PathEncodingError(".".join(field_path), segment) from None


def _decode_one(pieces: list[str], field_path: tuple[str, ...]) -> str:
    return _decode(pieces[0], field_path)


def _decode_all(pieces: list[str], field_path: tuple[str, ...]) -> str:
    return "/".join(_decode(p, field_path) for p in pieces)


def _keeping(kept: re.Pattern[str]) -> _Decoder:
    """A multi-segment decoder that leaves the escapes `kept` matches as they were sent."""

    def decode(pieces: list[str], field_path: tuple[str, ...]) -> str:
        out = []
        for piece in pieces:
            if "%" in piece:
                split = kept.split(piece)  # odd indexes are the kept escapes
                piece = "".join(p if i % 2 else _decode(p, field_path) for i, p in enumerate(split))
            out.append(piece)
        return "/".join(out)

    return decode


def _decode_path(raw_path: str) -> str:
    """The whole path decoded (legacy mode); bytes that are not UTF-8 survive as surrogates
    so that only a variable holding them is refused, naming its field."""
    bad = _MALFORMED_ESCAPE.search(raw_path)
    if bad is not None:
        raise MalformedEscape(raw_path, bad.start())
    return unquote_to_bytes(raw_path).decode("utf-8", "surrogateescape")


def _legacy_value(pieces: list[str], field_path: tuple[str, ...]) -> str:
    value = "/".join(pieces)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
            raise PathEncodingError(".".join(field_path), raw.decode("latin-1")) from None
    return value


def normalize_segment(segment: str) -> str:
    """RFC 3986 normal form of a path segment: unreserved escapes decoded, hex upper-cased."""
    if "%" not in segment:
        return segment
    out, i, n = [], 0, len(segment)
    while i < n:
        char = segment[i]
        if char == "%" and i + 2 < n and segment[i + 1] in _HEX and segment[i + 2] in _HEX:
            decoded = chr(int(segment[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else segment[i : i + 3].upper())
            i += 3
        else:
            out.append(char)
            i += 1
    return "".join(out)
