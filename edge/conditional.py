"""Conditional GETs on REST routes: ETag, If-None-Match -> 304, Cache-Control.

A REST-adapter concern (it reads and writes HTTP headers only; when the
protocol-neutral core arrives this moves with the REST adapter). Off unless
the config has a `caching` section; then, for a GET (or HEAD) whose reply is a
200 (never an error, never a stream):

* **ETag**: the backend's, if it set `etag` in its response metadata (initial
  or trailing; quoted or not, `W/` kept), else a strong tag the gateway makes
  from the reply's bytes as sent uncompressed: SHA-256 (OpenSSL, ~1 µs per KB
  here and as fast as SHA-1 on CPUs with SHA extensions; a 32-bit CRC would be
  faster but collides far too easily for a tag clients trust to skip a download;
  xxhash is not a dependency and not collision resistant), first 128 bits,
  base64url: 22 characters. `etag: false` (whole section or per route) stops the
  gateway's own tags; a backend's still count.
* **Compressed replies** carry the tag weak (`W/"..."`), as nginx does: a strong
  tag names one exact byte sequence (RFC 9110 8.8.1), and the gzip, br and zstd
  forms of one reply are different sequences of the same representation
  data. If-None-Match compares weakly (RFC 9110 13.1.2), so a client holding
  either form gets its 304 whatever it accepts next.
* **If-None-Match**: `*`, one tag or a list; a match answers 304 with no body
  and no Content-Length/Type/Encoding, keeping ETag, Cache-Control and Vary
  (Vary: Accept-Encoding too when the 200 would be compressible), as RFC 9110
  15.4.5 asks. A header that does not parse matches nothing. The backend is
  still called (only it knows the current reply); what the 304 saves is the
  download. Other methods' preconditions are not the gateway's to evaluate.
* **Cache-Control**: the backend's `cache-control` metadata, else the most
  specific `routes[].cache_control` (match patterns, edge/matching.py), else
  `cache_control`, else none.
* **Replies that vary by principal**: on a route whose auth policy takes a
  credential (`required` or `optional`), the reply gets `Vary: Authorization`
  (and the API-key header when API keys are configured), so no cache hands
  one caller's reply to another. When the call carried a credential, the
  reply is `private`: a configured `public` becomes `private` and `s-maxage`
  is dropped, and `private` is added when nothing else says private or
  no-store. Only the backend can make such a reply shared (`public` in its own
  `cache-control` metadata): only it knows whether the reply depends on who
  asked.

Batch items are calls like any other: an item with its own `If-None-Match`
header gets its 304 in its slot of the batch answer.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from transcoding.routes import Route

from .compression import add_vary_accept_encoding
from .matching import Matcher, MatchList, Target

# The config module imports this one (for CachingConfig), and the REST adapter imports the
# config: the types below are named for the reader only, so no import runs in a circle.
Call = Any  # edge.protocols.rest.RestCall
Reply = Any  # edge.protocols.rest.Reply
EffectivePolicy = Any  # edge.auth.EffectivePolicy
GatewayConfig = Any  # edge.config.GatewayConfig

__all__ = ["CacheRule", "CachingConfig", "ConditionalGets", "etag_of", "if_none_match_matches", "weaken_etag"]

_DIRECTIVE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+(=([!#$%&'*+.^_`|~0-9A-Za-z-]+|\"[^\"\\\\]*\"))?$")
_ETAG = re.compile(r'^(W/)?"[\x21\x23-\x7e\x80-\xff]*"$')
_BARE_ETAG = re.compile(r"^[\x21\x23-\x7e]{1,256}$")
_TAG_IN_LIST = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
# What a 304 leaves out (RFC 9110 15.4.5: representation metadata the client already has).
_NOT_IN_304 = frozenset({b"content-type", b"content-length", b"content-encoding"})
_SAFE = frozenset({"GET", "HEAD"})


def _cache_control(value: str | None) -> str | None:
    if value is None:
        return None
    directives = [d.strip() for d in value.split(",") if d.strip()]
    if not directives:
        raise ValueError("cache_control is empty; leave it out instead")
    for directive in directives:
        if not _DIRECTIVE.match(directive):
            raise ValueError(f"cache_control: {directive!r} is not a directive such as max-age=60, private or no-cache")
    return ", ".join(directives)


class CacheRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: MatchList = Field(description="routes this rule covers (edge/matching.py); the most specific rule wins")
    cache_control: str | None = Field(None, description="Cache-Control for these routes' 200 replies")
    etag: bool | None = Field(None, description="the gateway's own ETags on these routes (default: the section's)")

    @field_validator("cache_control")
    @classmethod
    def _directives(cls, value: str | None) -> str | None:
        return _cache_control(value)


class CachingConfig(BaseModel):
    """`caching`: ETags, If-None-Match and Cache-Control on GET routes (edge/conditional.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    etag: bool = Field(True, description="strong ETags from the reply bytes on every GET route's 200 replies")
    cache_control: str | None = Field(None, description="Cache-Control for every GET route without a rule of its own")
    backend_metadata: bool = Field(True, description="a backend's `etag` / `cache-control` response metadata win")
    routes: list[CacheRule] = Field(default_factory=list)

    _rules: Matcher[CacheRule] = PrivateAttr()

    @field_validator("cache_control")
    @classmethod
    def _directives(cls, value: str | None) -> str | None:
        return _cache_control(value)

    def model_post_init(self, __context: Any) -> None:
        self._rules = Matcher([(rule.match, rule) for rule in self.routes])

    def rule_for(self, target: Target) -> CacheRule | None:
        best = self._rules.best(target)
        return None if best is None else best[1]


# ----------------------------------------------------------------------------- tags

def etag_of(body: bytes) -> bytes:
    """The gateway's strong tag for these bytes: `"<22 characters of base64url>"`."""
    digest = hashlib.sha256(body).digest()[:16]
    return b'"' + base64.urlsafe_b64encode(digest).rstrip(b"=") + b'"'


def backend_etag(value: Any) -> bytes | None:
    """A backend's `etag` metadata as a header value (quoted when it came bare), or None if unusable."""
    if isinstance(value, bytes):
        return None  # binary metadata (`etag-bin`) is no entity tag
    text = str(value).strip()
    if _ETAG.match(text):
        return text.encode("latin-1", "replace")
    if _BARE_ETAG.match(text) and '"' not in text:
        return b'"' + text.encode("ascii") + b'"'
    return None


def if_none_match_matches(header: str, etag: bytes) -> bool:
    """RFC 9110 13.1.2: `*` matches any current representation; otherwise weak comparison
    (the opaque parts equal, `W/` ignored) against each listed tag. Bad syntax matches nothing."""
    value = header.strip()
    if value == "*":
        return True
    mine = etag[2:] if etag.startswith(b"W/") else etag
    opaque = mine[1:-1].decode("latin-1")
    pos = 0
    while pos < len(value):
        found = _TAG_IN_LIST.match(value, pos)
        if found is None:
            return False
        if found.group(2) == opaque:
            return True
        pos = found.end()
    return False


def weaken_etag(headers: list[tuple[bytes, bytes]]) -> None:
    """A strong ETag made weak, for a reply sent content-coded (see the module docstring)."""
    for i, (name, value) in enumerate(headers):
        if name == b"etag" and not value.startswith(b"W/"):
            headers[i] = (name, b"W/" + value)


def _merge_vary(headers: list[tuple[bytes, bytes]], names: bytes) -> None:
    for i, (key, value) in enumerate(headers):
        if key == b"vary":
            have = {t.strip().lower() for t in value.split(b",")}
            if b"*" in have:
                return
            extra = [n for n in names.split(b", ") if n.lower() not in have]
            if extra:
                headers[i] = (key, value + b", " + b", ".join(extra))
            return
    headers.append((b"vary", names))


def _private(cache_control: str | None) -> str:
    """The directives for a reply made for one principal: never shared."""
    if cache_control is None:
        return "private"
    kept = []
    for directive in cache_control.split(","):
        directive = directive.strip()
        name = directive.split("=", 1)[0].lower()
        if name in ("public", "s-maxage"):
            continue
        kept.append(directive)
    names = {d.split("=", 1)[0].lower() for d in kept}
    if "private" not in names and "no-store" not in names:
        kept.insert(0, "private")
    return ", ".join(kept)


# ----------------------------------------------------------------------------- per route

@dataclass(frozen=True, slots=True)
class RoutePlan:
    etag: bool
    cache_control: str | None
    vary: bytes | None  # credential headers, on routes that take a credential
    target: Target  # the route, for its compression opt-out when a 304 is made


class ConditionalGets:
    """The `caching` section at work for the REST adapter; per-route plans dropped on a table rebuild."""

    def __init__(self, config: CachingConfig, gateway: GatewayConfig) -> None:
        self.config = config
        self.compression = gateway.compression
        names = [b"Authorization"]
        auth = gateway.auth
        if auth is not None and (auth.api_keys or auth.api_key_store is not None):
            names.append(auth.api_key_header.encode("latin-1"))
        self._credentials = b", ".join(names)
        self._plans: dict[int, tuple[Route, RoutePlan]] = {}

    def clear(self, *_: Any) -> None:
        self._plans = {}

    def plan(self, route: Route, policy: EffectivePolicy | None) -> RoutePlan:
        entry = self._plans.get(id(route))
        if entry is not None and entry[0] is route:
            return entry[1]
        plan = self.plan_for(Target.of(route), policy is not None and policy.auth != "none")
        if len(self._plans) < 100_000:  # routes are few; the table's rebuild clears it
            self._plans[id(route)] = (route, plan)
        return plan

    def plan_for(self, target: Target, takes_credential: bool) -> RoutePlan:
        """The plan of a route (or a composed route): its rule, and whether its policy takes a credential."""
        rule = self.config.rule_for(target)
        etag = self.config.etag if rule is None or rule.etag is None else rule.etag
        cache_control = rule.cache_control if rule is not None and rule.cache_control is not None else self.config.cache_control
        return RoutePlan(etag, cache_control, self._credentials if takes_credential else None, target)

    def finish(self, call: Call, route: Route, policy: EffectivePolicy | None, reply: Reply,
               metadata: Iterable[tuple[str, Any]] = ()) -> Reply:
        """ETag, Cache-Control and Vary on a GET's 200, or the 304 it turns into."""
        if reply.status != 200 or call.http_method not in _SAFE or call.route is not None:
            return reply  # (a part of a composed route: the composition's reply gets the tag)
        return self.conclude(call, self.plan(route, policy), reply, metadata)

    def conclude(self, call: Call, plan: RoutePlan, reply: Reply, metadata: Iterable[tuple[str, Any]] = ()) -> Reply:
        etag = cache_control = None
        if metadata and self.config.backend_metadata:
            for key, value in metadata:
                if key == "etag" and etag is None:
                    etag = backend_etag(value)
                elif key == "cache-control" and cache_control is None and isinstance(value, str):
                    try:
                        cache_control = _cache_control(value)
                    except ValueError:
                        pass  # unusable: the configured default applies
        if etag is None and plan.etag:
            etag = etag_of(reply.body)
        headers = reply.headers
        if etag is not None:
            headers.append((b"etag", etag))
        if cache_control is None:
            cache_control = plan.cache_control
            if call.principal is not None:
                cache_control = _private(cache_control)
        elif call.principal is not None and "public" not in cache_control.lower():
            cache_control = _private(cache_control)
        if cache_control:
            headers.append((b"cache-control", cache_control.encode("latin-1")))
        if plan.vary is not None:
            _merge_vary(headers, plan.vary)
        condition = call.headers.get("if-none-match")
        if condition is None or etag is None or not if_none_match_matches(condition, etag):
            return reply
        kept = [h for h in headers if h[0] not in _NOT_IN_304]
        content_type = next((v for k, v in headers if k == b"content-type"), None)
        compression = self.compression
        if (compression.enabled and content_type is not None
                and compression.compressible(content_type.decode("latin-1"))
                and not compression.route_opted_out(plan.target.full_method, plan.target.template,
                                                    plan.target.http_method)):
            add_vary_accept_encoding(kept)
        reply.status, reply.headers, reply.body = 304, kept, b""
        return reply
