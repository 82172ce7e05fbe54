"""Which browser origins a CORS policy allows: parsed once from the config, matched per request.

An origin is what a browser sends in `Origin`: the ASCII serialization of a
scheme, a host and a port (RFC 6454, the Fetch standard), e.g.
`https://app.example.com` or `http://localhost:3000`, never a path. The host is
lower case, an internationalized name is in punycode (`xn--`), and a scheme's
default port is left out. Config entries are brought to that same spelling, so
a request's `Origin` is compared as a string, exactly, never parsed:

    https://app.example.com        that origin only (`:443` is dropped: browsers never send it)
    http://localhost:3000          scheme and port are part of the origin
    https://*.example.com          any origin whose host ends in `.example.com`, one label
                                   or more before it, same scheme, same (default) port;
                                   not `https://example.com` itself
    null                           the opaque origin (sandboxed iframes, file: pages, some
                                   redirects): only when listed, and never with credentials
    *                              any origin, answered `Access-Control-Allow-Origin: *`
                                   (never the request's Origin), never with credentials

A pattern's `*` is a whole leftmost label and matches only DNS labels
(`[a-z0-9_-]`, joined by dots), so `https://evil.com/.example.com`,
`https://x.example.com.evil.com`, `https://x.example.com:444` and
`http://x.example.com` never match `https://*.example.com`.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable

ANY = "*"
NULL = "null"

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_DNS_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# What a wildcard label may be at request time: letters, digits, '_' and '-', nothing that ends a host.
_WILD_LABELS = r"(?:[a-z0-9_-]+\.)+"
_MAX_ORIGIN = 2048  # longer than any real origin; not worth a regex run

_EXAMPLE = "e.g. 'https://app.example.com', 'http://localhost:3000' or 'https://*.example.com'"


def parse_origin(text: str) -> str:
    """The canonical spelling of one `allow_origins` entry; ValueError naming the problem."""
    if not isinstance(text, str):
        raise ValueError(f"origin {text!r} must be a string")
    raw = text.strip()
    if raw in (ANY, NULL):
        return raw
    if raw.lower() == NULL:
        return NULL
    scheme, sep, rest = raw.partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.match(scheme):
        raise ValueError(f"origin {text!r} has no scheme; an origin is scheme://host[:port], {_EXAMPLE}")
    if not rest:
        raise ValueError(f"origin {text!r} has no host")
    for char, what in (("/", "a path (an origin ends after the host and port)"), ("?", "a query"),
                       ("#", "a fragment"), ("@", "user information"), ("\\", "a backslash")):
        if char in rest:
            raise ValueError(f"origin {text!r} has {what}; write it as scheme://host[:port], {_EXAMPLE}")
    if not rest.isascii() or any(c.isspace() or not c.isprintable() for c in rest):
        raise ValueError(f"origin {text!r}: write the host in ASCII (internationalized names in punycode, xn--...)")
    if rest.startswith("*.") and "[" in rest:
        raise ValueError(f"origin {text!r}: a wildcard needs a DNS name after '*.', not an IP address")
    host, port = _split_port(rest, text)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise ValueError(f"origin {text!r}: '*' may only be the whole first label of the host, as in "
                         f"'{scheme}://*.example.com'")
    host = _canonical_host(host.lower(), text)
    if wildcard:
        if host.startswith("[") or _is_ipv4(host):
            raise ValueError(f"origin {text!r}: a wildcard needs a DNS name after '*.', not an IP address")
        if "." not in host:
            raise ValueError(f"origin {text!r}: '*.{host}' would cover a whole top-level domain; "
                             f"name at least two labels after '*.'")
        host = "*." + host
    if port is not None and port == _DEFAULT_PORTS.get(scheme):
        port = None  # the browser's serialization leaves a default port out
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def _split_port(rest: str, text: str) -> tuple[str, int | None]:
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"origin {text!r}: an IPv6 host needs its closing ']'")
        host, tail = rest[: end + 1], rest[end + 1:]
    else:
        host, colon, port_text = rest.partition(":")
        tail = colon + port_text
    if not tail:
        return host, None
    if not tail.startswith(":") or not tail[1:].isdigit() or not tail[1:].isascii():
        raise ValueError(f"origin {text!r}: the port must be digits after ':'")
    port = int(tail[1:])
    if not 1 <= port <= 65535:
        raise ValueError(f"origin {text!r}: port {port} is out of range 1-65535")
    return host, port


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _canonical_host(host: str, text: str) -> str:
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"origin {text!r}: {host} is not an IPv6 address") from None
    if host.replace(".", "").isdigit():
        if not _is_ipv4(host):
            raise ValueError(f"origin {text!r}: {host} is not an IPv4 address in dotted decimal")
        return host
    if not _DNS_NAME.match(host):
        raise ValueError(f"origin {text!r}: {host!r} is not a host name (letters, digits, '-', '_' and dots)")
    return host


class AllowedOrigins:
    """The origins of one policy, compiled once; `allows(origin)` runs per request.

    Exact origins are one set lookup; every pattern of the policy is one anchored
    regex. Nothing is parsed at request time and nothing is lower-cased: a browser
    sends the canonical spelling, and any other spelling is not a browser's."""

    __slots__ = ("any", "null", "exact", "_patterns", "texts")

    def __init__(self, origins: Iterable[str]) -> None:
        texts = tuple(dict.fromkeys(parse_origin(o) for o in origins))
        self.texts = texts
        self.any = ANY in texts
        self.null = NULL in texts
        self.exact = frozenset(t for t in texts if t not in (ANY, NULL) and "://*." not in t)
        patterns = [_pattern_regex(t) for t in texts if "://*." in t]
        self._patterns = re.compile("|".join(patterns)) if patterns else None

    def __bool__(self) -> bool:
        return bool(self.texts)

    def __repr__(self) -> str:
        return f"AllowedOrigins({list(self.texts)!r})"

    def allows(self, origin: str) -> bool:
        if origin in self.exact or self.any:
            return True
        if origin == NULL:
            return self.null
        patterns = self._patterns
        return patterns is not None and len(origin) <= _MAX_ORIGIN and patterns.fullmatch(origin) is not None


def _pattern_regex(text: str) -> str:
    """`scheme://*.suffix[:port]` as a regex for `fullmatch`: the wildcard covers whole labels only."""
    head, _, host_port = text.partition("://*.")
    return f"(?:{re.escape(head + '://')}{_WILD_LABELS}{re.escape(host_port)})"
