"""Route lookup for ``google.api.http`` templates: one segment trie for all routes.

Matching rules (Envoy's grpc-httpjson-transcoding path_matcher is the reference):

* Precedence goes segment by segment, left to right: a literal beats ``*``, and
  ``*`` beats ``**``. Each HTTP method is matched on its own, so a ``GET`` falls
  back to ``/v1/{id}`` when ``/v1/search`` only exists for ``POST``.
* Every trie edge consumes exactly one segment and ``**`` is always a leaf, so a
  node is only ever reached at one depth: a lookup visits each node at most once
  per attempt (two attempts at most, see verbs), whatever the path looks like.
  Subtrees that hold no route for the method are skipped.
* Verbs: if the text after the last ``:`` of the last segment is a verb some
  template uses, it is split off and matched separately; if nothing matches
  that way, the path is tried again with ``:xyz`` kept in the last segment (so
  ``/v1/{name}`` still matches ``/v1/a:b``). Only a literal ``:`` separates a
  verb; ``%3A`` is data.
* Trailing empty segments are dropped as Envoy does (``/v1/books/`` is
  ``/v1/books``; ``/`` is the root). Empty inner segments (``/a//b``) are kept:
  only a wildcard can match them, binding ``""``.
* Literals (and verbs) are compared after RFC 3986 normalisation: escapes of
  unreserved characters are decoded, other escapes get upper-case hex.
* A variable bound to one segment (``{x}``, ``{x=*}``) is fully percent-decoded
  (``%2F`` -> ``/``). A multi-segment variable (``{x=**}``, ``{x=a/*}``) is decoded
  except ``%2F``/``%2f``, which stay as written -- http.proto's rule for ``{+var}``
  (Envoy's default keeps every RFC 6570 reserved escape; we follow the spec).
* Malformed escapes (``%zz``, a truncated ``%4``) are kept verbatim, as Envoy
  does. Escapes that decode to invalid UTF-8 are a client error:
  :class:`PathEncodingError`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote_to_bytes

from transcoding.template import PathTemplate

__all__ = [
    "Match",
    "MethodNotAllowed",
    "NoRoute",
    "PathEncodingError",
    "PathMatcher",
    "RouteConflict",
]

T = TypeVar("T")

_TCHAR = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_HEX = frozenset(string.hexdigits)
_ENCODED_SLASH = re.compile("(%2[fF])")
_NONE: dict[str, "_Route"] = {}


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


@dataclass
class Match(Generic[T]):
    value: T
    bindings: list[tuple[tuple[str, ...], str]]


@dataclass(frozen=True, slots=True)
class _Route(Generic[T]):
    template: PathTemplate
    value: T
    # (field_path, start, end or None, multi-segment?) per variable, precomputed.
    variables: tuple[tuple[tuple[str, ...], int, int | None, bool], ...]


class _Node:
    __slots__ = ("literals", "single", "multi", "routes", "methods")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.single: _Node | None = None
        self.multi: _Node | None = None  # '**' leaf: matches all remaining segments, even none
        self.routes: dict[str | None, dict[str, _Route]] = {}  # verb -> method -> route
        self.methods: set[str] = set()  # methods with a route somewhere in this subtree


class PathMatcher(Generic[T]):
    """Maps (HTTP method, request path) to the value registered with the best template."""

    def __init__(self) -> None:
        self._root = _Node()
        self._verbs: set[str] = set()

    def add(self, http_method: str, template: PathTemplate, value: T) -> None:
        if not http_method or not _TCHAR.issuperset(http_method):
            raise ValueError(f"invalid HTTP method {http_method!r}")
        node = self._root
        path = [node]
        for segment in template.segments:
            if segment.kind == "literal":
                node = node.literals.setdefault(_normalize(segment.value), _Node())
            elif segment.kind == "single":
                if node.single is None:
                    node.single = _Node()
                node = node.single
            else:
                if node.multi is None:
                    node.multi = _Node()
                node = node.multi
            path.append(node)
        verb = _normalize(template.verb) if template.verb is not None else None
        by_method = node.routes.setdefault(verb, {})
        existing = by_method.get(http_method)
        if existing is not None:
            raise RouteConflict(http_method, template, existing.template, existing.value)
        variables = tuple(
            (v.field_path, v.start, v.end, v.end is None or v.end - v.start > 1) for v in template.variables
        )
        by_method[http_method] = _Route(template, value, variables)
        for visited in path:
            visited.methods.add(http_method)
        if verb is not None:
            self._verbs.add(verb)

    def lookup(self, http_method: str, raw_path: str) -> Match[T]:
        """Find the route for a still percent-encoded path (no query string).

        Raises :class:`NoRoute`, :class:`MethodNotAllowed` or :class:`PathEncodingError`.
        """
        attempts = self._attempts(raw_path)
        for parts, keys, verb in attempts:
            if http_method in self._root.methods:
                route = _find(self._root, keys, 0, verb, http_method)
                if route is not None:
                    return Match(route.value, _bindings(route, parts))
        allowed: set[str] = set()
        for _, keys, verb in attempts:
            _collect(self._root, keys, 0, verb, allowed)
        if allowed:
            raise MethodNotAllowed(http_method, raw_path, sorted(allowed))
        raise NoRoute(http_method, raw_path)

    def _attempts(self, raw_path: str) -> list[tuple[list[str], list[str], str | None]]:
        """The (raw parts, normalized parts, verb) splits of the path to try, in order."""
        if not raw_path.startswith("/"):
            return []
        attempts = []
        colon = raw_path.rfind(":")
        if colon > raw_path.rfind("/") + 1 and (verb := _normalize(raw_path[colon + 1 :])) in self._verbs:
            attempts.append((_split(raw_path[:colon]), verb))
        attempts.append((_split(raw_path), None))
        return [(parts, [_normalize(p) for p in parts], verb) for parts, verb in attempts]


def _split(path: str) -> list[str]:
    parts = path[1:].split("/")
    while parts and not parts[-1]:
        parts.pop()
    return parts


def _find(node: _Node, keys: list[str], i: int, verb: str | None, method: str) -> _Route | None:
    """Depth-first search in precedence order: literal, then '*', then '**'."""
    if i == len(keys):
        route = node.routes.get(verb, _NONE).get(method)
        if route is None and node.multi is not None:
            route = node.multi.routes.get(verb, _NONE).get(method)
        return route
    child = node.literals.get(keys[i])
    if child is not None and method in child.methods:
        route = _find(child, keys, i + 1, verb, method)
        if route is not None:
            return route
    child = node.single
    if child is not None and method in child.methods:
        route = _find(child, keys, i + 1, verb, method)
        if route is not None:
            return route
    if node.multi is not None:
        return node.multi.routes.get(verb, _NONE).get(method)
    return None


def _collect(node: _Node, keys: list[str], i: int, verb: str | None, out: set[str]) -> None:
    """Add every method that has some template matching the path (error path only)."""
    if node.multi is not None:
        out.update(node.multi.routes.get(verb, ()))
    if i == len(keys):
        out.update(node.routes.get(verb, ()))
        return
    for child in (node.literals.get(keys[i]), node.single):
        if child is not None:
            _collect(child, keys, i + 1, verb, out)


def _bindings(route: _Route, parts: list[str]) -> list[tuple[tuple[str, ...], str]]:
    bindings = []
    for field_path, start, end, multi in route.variables:
        if multi:
            value = "/".join(_decode_keep_slash(p, field_path) for p in parts[start:end])
        else:
            value = _decode(parts[start], field_path)
        bindings.append((field_path, value))
    return bindings


def _decode(segment: str, field_path: tuple[str, ...]) -> str:
    if "%" not in segment:
        return segment
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise PathEncodingError(".".join(field_path), segment) from None


def _decode_keep_slash(segment: str, field_path: tuple[str, ...]) -> str:
    if "%" not in segment:
        return segment
    pieces = _ENCODED_SLASH.split(segment)  # odd indexes are the kept '%2F's
    return "".join(p if i % 2 else _decode(p, field_path) for i, p in enumerate(pieces))


def _normalize(segment: str) -> str:
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
