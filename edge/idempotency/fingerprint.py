"""Identity of a request and of its key.

The fingerprint tells "the same request again" from "a different request
reusing a key": sha256 over the method, the path, the query (pairs sorted),
the body (JSON re-serialised with sorted keys, so key order and whitespace do
not matter; other bodies as raw bytes) and the configured headers. Every part
is length-prefixed so no two different requests hash the same input.

The backend key is sha256 over (principal, route, Idempotency-Key): the record
is scoped to the caller and the route, and the backend receives this derived
value as gRPC metadata `idempotency-key`, never another caller's raw key.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping
from urllib.parse import parse_qsl

import orjson

from .errors import IdempotencyKeyInvalid

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Query = str | bytes | Mapping[str, str | list[str]] | Iterable[tuple[str, str]] | None


def _put(h: "hashlib._Hash", data: bytes) -> None:
    h.update(b"%d:" % len(data))
    h.update(data)


def _canonical_query(query: Query) -> list[tuple[str, str]]:
    if query is None:
        return []
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    if isinstance(query, str):
        return sorted(parse_qsl(query.lstrip("?"), keep_blank_values=True))
    items = query.items() if isinstance(query, Mapping) else query
    pairs: list[tuple[str, str]] = []
    for k, v in items:
        if isinstance(v, (list, tuple)):
            pairs.extend((str(k), str(x)) for x in v)
        else:
            pairs.append((str(k), str(v)))
    return sorted(pairs)


def canonical_body(body: bytes) -> bytes:
    if not body:
        return b""
    try:
        return b"j" + orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, TypeError):
        return b"r" + body


def header_values(headers: Headers, names: Iterable[str]) -> list[str | None]:
    wanted = {n: [] for n in names}  # type: dict[str, list[str]]
    if wanted:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for k, v in items:
            values = wanted.get(k.lower())
            if values is not None:
                values.append(v.strip())
    return [",".join(v) if v else None for v in wanted.values()]


def fingerprint(method: str, path: str, query: Query, body: bytes, headers: Headers,
                fingerprint_headers: Iterable[str] = ()) -> str:
    h = hashlib.sha256()
    _put(h, method.upper().encode())
    _put(h, path.encode("utf-8", "surrogatepass"))
    pairs = _canonical_query(query)
    _put(h, b"%d" % len(pairs))
    for k, v in pairs:
        _put(h, k.encode("utf-8", "surrogatepass"))
        _put(h, v.encode("utf-8", "surrogatepass"))
    _put(h, canonical_body(body))
    for name, value in zip(fingerprint_headers, header_values(headers, fingerprint_headers)):
        _put(h, name.encode())
        _put(h, b"-" if value is None else b"=" + value.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def backend_key(principal_id: str | None, route_id: str, key: str) -> str:
    h = hashlib.sha256()
    _put(h, b"\x00anonymous" if principal_id is None else principal_id.encode("utf-8", "surrogatepass"))
    _put(h, route_id.encode("utf-8", "surrogatepass"))
    _put(h, key.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def parse_key(raw: str, *, max_length: int, pattern: re.Pattern[str], header: str = "Idempotency-Key") -> str:
    """The key from the header value (bare, or an sf-string in quotes as the draft writes it)."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise IdempotencyKeyInvalid(f"{header} is empty", header)
    if len(value) > max_length:
        raise IdempotencyKeyInvalid(f"{header} is {len(value)} characters long; at most {max_length} are allowed",
                                    header)
    if not pattern.fullmatch(value):
        bad = next((i for i, c in enumerate(value) if not pattern.fullmatch(c)), None)
        where = f" at position {bad} ({value[bad]!r})" if bad is not None else ""
        raise IdempotencyKeyInvalid(f"{header} contains a character that is not allowed{where}; "
                                    f"use visible ASCII, for example a UUID", header)
    return value
