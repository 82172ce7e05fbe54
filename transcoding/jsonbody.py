"""A request body's JSON: read strictly, and json_format's errors in the client's terms.

The stdlib parser with a duplicate-key check (orjson would silently keep the last
value), no NaN/Infinity literals, UTF-8 only; a body may also hold a sequence of
values (NDJSON, or values one after another as Go's json.Decoder reads them) for a
client stream. json_format's parse errors become BadRequests naming the JSON field
path. transcoding/codec.py decodes bodies with these; edge/batch.py reads its
envelope with `load_json`.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import BadRequest, UnsupportedMediaType

__all__ = ["JSON_SPACE", "check_charset", "join_path", "json_error", "json_kind", "load_json", "load_json_values"]

_AT_PATH = re.compile(r' at "?([A-Za-z_][\w]*(?:\.[^\s."\[\]]+|\[[^\]]*\])*)"?')
_NAMED_AT_PARENT = [
    (re.compile(r'has no field named "(.*?)" at "(.*?)"'), "request body has unknown field {path!r}"),
    (re.compile(r'multiple "(.*?)" oneof fields at "(.*?)"'), "request body sets more than one member of oneof {path!r}"),
    (re.compile(r'multiple "(.*?)" fields at "(.*?)"'), "request body sets {path!r} more than once"),
]
_REPEATED = re.compile(r"repeated field (\S+) must be in")
_FAILED_PREFIX = re.compile(r"^Failed to parse (\S+) field: ")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (quote it: \"{name}\")")


def check_charset(content_type: str | None) -> None:
    """UnsupportedMediaType for a JSON body declared in a charset other than UTF-8."""
    if not content_type or "charset" not in content_type.lower():
        return
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"JSON bodies must be UTF-8, not {value.strip()!r}")


def load_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity literals."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise BadRequest(f"malformed JSON body: duplicate key {exc.key!r}", field=exc.key) from None
    except RecursionError:
        raise BadRequest("malformed JSON body: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None


_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
JSON_SPACE = b" \t\r\n"
_SPACE_RUN = re.compile(r"[ \t\r\n]*")


def load_json_values(body: bytes) -> list[tuple[Any, int]]:
    """Every JSON value of a body that holds a sequence of them (NDJSON, or values
    one after another as Go's json.Decoder reads them), each with the line it
    starts on; the same strictness as `load_json`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None
    values: list[tuple[Any, int]] = []
    line, counted = 1, 0
    position = _SPACE_RUN.match(text).end()
    while position < len(text):
        line += text.count("\n", counted, position)
        counted = position
        try:
            value, position = _STRICT.raw_decode(text, position)
        except _DuplicateKey as exc:
            raise BadRequest(
                f"malformed JSON in value {len(values) + 1} (line {line}) of the request stream: "
                f"duplicate key {exc.key!r}",
                field=exc.key,
            ) from None
        except RecursionError:
            raise BadRequest(f"value {len(values) + 1} (line {line}) of the request stream is nested too deeply") from None
        except ValueError as exc:
            raise BadRequest(f"malformed JSON in value {len(values) + 1} (line {line}) of the request stream: {exc}") from None
        values.append((value, line))
        position = _SPACE_RUN.match(text, position).end()
    return values


def json_error(exc: BaseException, prefix: str) -> BadRequest:
    """json_format's error -> BadRequest naming the field path it reports
    (relative to the request message: `prefix` is where parsing started).

    json_format says where with "at <Type>.<path>" (the innermost message,
    or the parent for container-level errors) and/or a chain of
    "Failed to parse <name> field: " prefixes; use whichever is more precise.
    """
    if isinstance(exc, RecursionError):
        return BadRequest("request body is nested too deeply")
    text = str(exc)
    for pattern, what in _NAMED_AT_PARENT:
        match = pattern.search(text)
        if match:
            path = join_path(join_path(prefix, _strip_root(match.group(2))), match.group(1))
            return BadRequest(what.format(path=path), field=path)
    names: list[str] = []
    reason = text
    while (match := _FAILED_PREFIX.match(reason)) is not None:
        names.append(match.group(1))
        reason = reason[match.end():]
    found = _AT_PATH.findall(reason)
    where = _strip_root(found[-1]) if found else ""
    if found:
        reason = reason[: reason.rfind(" at ")]
    match = _REPEATED.match(reason)
    if match:
        where = join_path(where, match.group(1))
    path = join_path(prefix, where or ".".join(names))
    reason = reason.strip().rstrip(".") or type(exc).__name__
    if path:
        return BadRequest(f"invalid request body field {path!r}: {reason}", field=path)
    return BadRequest(f"invalid request body: {reason}")


def _strip_root(path: str) -> str:
    """json_format paths start with the parsed message's type name."""
    if path.startswith("["):
        return path
    _, dot, rest = path.partition(".")
    if dot:
        return rest
    bracket = path.find("[")
    return path[bracket:] if bracket > 0 else ""


def join_path(prefix: str, rest: str) -> str:
    """A field path in a BadRequest: `prefix.rest`, or `prefix[0]` for an index."""
    if not prefix:
        return rest
    if not rest:
        return prefix
    return prefix + rest if rest.startswith("[") else f"{prefix}.{rest}"


def json_kind(value: Any) -> str:
    """What a JSON value is, for messages that say what was expected instead."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
