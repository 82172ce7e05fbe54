"""Which routes a config `match` pattern names: one syntax for every section.

Used by `auth.policies[].match`, `rate_limits.policies[].match`,
`rate_limits.exempt`, `idempotency.routes[].match` and `compression.opt_out`,
so an operator learns one language and `edge check` checks all of them the
same way. A pattern is matched against a route of the route table: its gRPC
method (`pkg.Service/Method`), its HTTP verb and its path template as the proto
writes it (`/v1/{name=shelves/*}`).

    *                        every route
    pkg.Service/Method       a gRPC method: every HTTP binding of it
    pkg.Service/*   pkg.*    gRPC methods by glob (`pkg.*` covers sub-packages too)
    */Create*                any method whose name starts with Create
    GET /v1/users/{id}       one verb and one path template
    /v1/users/{id}           that template under any verb (same as `* /v1/users/{id}`)
    POST /v1/*               templates by glob

* `*` is the only wildcard. It matches any run of characters, `/` and `.`
  included. `?`, `[` and `]` are refused (they were fnmatch wildcards once and
  appear in no template or method name).
* Inside a template variable (`{...}`) a pattern is compared as written:
  `GET /v1/{name=shelves/*}` names exactly the route with that template.
* A pattern equal to a route's own text (its method, or verb and template)
  matches it exactly, even where the template itself contains `*`.
* `/pkg.Service/Method` (a leading `/`, then a dotted service name) is the gRPC
  wire spelling of the method, not a path: no template starts that way except
  the default binding `POST /pkg.Service/Method`, which belongs to the method.
* Verbs are upper-cased; any verb a `custom` binding uses is accepted.

Where a section picks one rule for a route (auth policies, idempotency
routes), the most specific matching pattern decides, in this order:

1. an exact route with its verb: `GET /v1/users/{id}`
2. an exact route, any verb: `/v1/users/{id}`
3. an exact gRPC method: `pkg.Service/Method`
4. patterns with `*`: the one that spells out more characters (not counting
   `*` and the verb) wins; on a tie a route pattern with a verb beats one
   without, which beats a method pattern
5. still tied: the rule listed first.

So `*` (nothing spelled out) always comes last, `pkg.Service/*` beats `pkg.*`,
and a glob over paths never overrides a policy that names a method exactly.
Where a section applies every rule that matches (rate limits), order does not
matter. Matching runs once per route (callers keep the answer), not per request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Iterable, Literal, Sequence, TypeVar

from pydantic import AfterValidator, BeforeValidator

T = TypeVar("T")

_VERB = re.compile(r"^(?:[A-Za-z]+|\*)$")
_IDENT = r"[A-Za-z_*][A-Za-z0-9_*]*"
_WIRE_METHOD = re.compile(rf"^/{_IDENT}(?:\.{_IDENT})+/[A-Za-z0-9_*]+$")
_METHOD = re.compile(r"^[A-Za-z0-9_.*]+(?:/[A-Za-z0-9_*]+)?$")
_SYNTAX = ("a pattern is '*', 'pkg.Service/Method' (or with '*': 'pkg.Service/*', 'pkg.*'), "
           "'VERB /template' or '/template'")

Kind = Literal["any", "method", "route"]

# Specificity forms, for ties (see the module docstring).
_FORM_ROUTE_VERB, _FORM_ROUTE, _FORM_METHOD, _FORM_ANY = 2, 1, 0, -1


@dataclass(frozen=True, slots=True)
class Target:
    """One route as patterns see it. Empty fields match no pattern of their kind."""

    full_method: str = ""  # "pkg.Service/Method"
    http_method: str = ""  # "GET"
    template: str = ""     # "/v1/{name=shelves/*}"

    @classmethod
    def of(cls, route: Any) -> "Target":
        """The target of a `transcoding.routes.Route`."""
        return cls(route.full_method, route.binding.http_method, route.template)

    @classmethod
    def of_route_id(cls, route_id: str, http_method: str = "", full_method: str = "") -> "Target":
        """From "VERB /template" (or a bare template): how the idempotency engine names routes."""
        verb, sep, template = route_id.partition(" ")
        if sep and template.startswith("/"):
            return cls(full_method, verb.upper(), template)
        return cls(full_method, http_method.upper(), route_id)


def normalize(text: str) -> str:
    """The canonical spelling of a pattern; ValueError naming the problem when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"match pattern {text!r} must be a string")
    text = text.strip()
    if not text:
        raise ValueError(f"match pattern is empty; {_SYNTAX}")
    bad = sorted(set(text) & set("?[]"))
    if bad:
        raise ValueError(f"match pattern {text!r}: '*' is the only wildcard; {''.join(bad)!r} is not allowed")
    parts = text.split()
    if len(parts) > 2:
        raise ValueError(f"match pattern {text!r} has more than one space; {_SYNTAX}")
    if len(parts) == 2:
        verb, path = parts
        if not _VERB.match(verb) or not path.startswith("/"):
            raise ValueError(f"match pattern {text!r} is not 'VERB /template'; {_SYNTAX}")
        return f"{verb.upper()} {path}"
    if text == "*" or text.startswith("/") and not _WIRE_METHOD.match(text):
        return text
    name = text.lstrip("/") if text.startswith("/") else text
    if not _METHOD.match(name):
        raise ValueError(f"match pattern {text!r} is neither a gRPC method nor a route; {_SYNTAX}")
    if "/" not in name and "*" not in name:
        raise ValueError(f"match pattern {text!r} names no method: a method is 'pkg.Service/Method', every "
                         f"method of a service 'pkg.Service/*', of a package 'pkg.*'")
    return name


def _route_regex(path: str) -> re.Pattern[str]:
    out, depth = [], 0
    for char in path:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        out.append(".*" if char == "*" and depth == 0 else re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _wildcards(path: str) -> int:
    """How many `*` of a route path are wildcards (those outside `{...}`)."""
    count, depth = 0, 0
    for char in path:
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        elif char == "*" and depth == 0:
            count += 1
    return count


class Pattern:
    """One compiled pattern. `specificity(target)` is None when it does not match."""

    __slots__ = ("text", "kind", "verb", "body", "_regex", "_spelled")

    def __init__(self, text: str) -> None:
        self.text = normalize(text)
        self.verb: str | None = None
        self.body = self.text
        self._regex: re.Pattern[str] | None = None
        if self.text == "*":
            self.kind: Kind = "any"
            self._spelled = 0
            return
        verb, sep, path = self.text.partition(" ")
        if sep:
            self.kind, self.body = "route", path
            self.verb = None if verb == "*" else verb
        elif self.text.startswith("/"):
            self.kind = "route"
        else:
            self.kind = "method"
        if self.kind == "route":
            wild = _wildcards(self.body)
            self._spelled = len(self.body) - wild
            self._regex = _route_regex(self.body) if wild else None
        else:
            self._spelled = len(self.body) - self.body.count("*")
            self._regex = re.compile(".*".join(re.escape(p) for p in self.body.split("*")), re.DOTALL) \
                if "*" in self.body else None

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    def specificity(self, target: Target) -> tuple[int, int, int] | None:
        """How specifically this pattern names the target (greater is more specific), or None."""
        if self.kind == "any":
            return (0, 0, _FORM_ANY)
        if self.kind == "method":
            name = target.full_method
            if not name:
                return None
            if name == self.body:
                return (1, _FORM_METHOD, 0)
            if self._regex is not None and self._regex.fullmatch(name):
                return (0, self._spelled, _FORM_METHOD)
            return None
        template = target.template
        if not template or (self.verb is not None and self.verb != target.http_method.upper()):
            return None
        form = _FORM_ROUTE if self.verb is None else _FORM_ROUTE_VERB
        if template == self.body:
            return (1, form, 0)
        if self._regex is not None and self._regex.fullmatch(template):
            return (0, self._spelled, form)
        return None

    def matches(self, target: Target) -> bool:
        return self.specificity(target) is not None


class Matcher(Generic[T]):
    """The patterns of a section's rules, compiled once.

    `rules` pairs each rule's patterns with the rule itself (any value)."""

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[tuple[Iterable[str], T]]) -> None:
        self._rules = [(tuple(Pattern(p) for p in patterns), value) for patterns, value in rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def all(self, target: Target) -> list[T]:
        """Every rule with a pattern that matches, in config order (sections that apply them all)."""
        return [value for patterns, value in self._rules if any(p.matches(target) for p in patterns)]

    def any(self, target: Target) -> bool:
        return any(p.matches(target) for patterns, _ in self._rules for p in patterns)

    def best(self, target: Target) -> tuple[Pattern, T] | None:
        """The most specific matching pattern and its rule (sections that pick one), or None."""
        best: tuple[tuple[int, int, int], Pattern, T] | None = None
        for patterns, value in self._rules:
            for pattern in patterns:
                rank = pattern.specificity(target)
                if rank is not None and (best is None or rank > best[0]):  # '>': the first listed keeps a tie
                    best = (rank, pattern, value)
        return None if best is None else (best[1], best[2])


def patterns_of(match: str | Sequence[str]) -> tuple[str, ...]:
    """A `match` value (one pattern or a list) as a tuple of patterns."""
    return (match,) if isinstance(match, str) else tuple(match)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _normalize_all(values: list[str]) -> list[str]:
    return [normalize(v) for v in values]


def _normalize_either(value: str | list[str]) -> str | list[str]:
    if isinstance(value, str):
        return normalize(value)
    if not value:
        raise ValueError(f"match is an empty list; give at least one pattern ({_SYNTAX})")
    return _normalize_all(value)


MatchList = Annotated[list[str], BeforeValidator(_as_list), AfterValidator(_normalize_all)]
"""A config `match:` field: one pattern or a list of them, kept as a list in canonical spelling."""

MatchSpec = Annotated[str | list[str], AfterValidator(_normalize_either)]
"""A `match:` field that keeps the shape it was given (one pattern stays a string)."""
