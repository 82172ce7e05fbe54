"""`{{...}}` references: the syntax batch items and composed routes share, and
their substitution into URLs and JSON values.

A reference is double braces around a source and a path:
`{{shelf.body.name}}` is the `name` of the JSON body item (or part) `shelf`
answered; list elements go by number (`{{list.body.books.0.name}}`) and
`{{shelf.body}}` is the whole body. A composed route also reads
`{{path.<variable>}}`, `{{query.<name>}}` and `{{claims.<claim>[.<key>...]}}`.
Which sources a document may name is its `Syntax`.

A JSON string that is exactly one reference takes the value with its JSON type
(an object stays an object, a number a number); inside a longer string the
value must be a string, number or boolean and is inserted as text (in a URL,
percent-encoded except `/`). Something in double braces that starts with a
known source but is not a valid reference is refused, so a typo is never sent
on as literal text.

What a reference is worth is the caller's business (`resolve`): batch items
refuse a reference with no value (400), composed routes leave the field out
(`ABSENT`, see `substitute`).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from transcoding import errors

__all__ = [
    "ABSENT", "BATCH", "Reference", "Syntax", "TooDeep", "as_text", "body_references", "follow", "references",
    "substitute", "substitute_url",
]

# Anything in double braces is looked at; whether it is a reference is the syntax's to say.
BRACES = re.compile(r"\{\{(.*?)\}\}")
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT", "__bool__": lambda self: False})()
# No request message nests deeper than the codec reads (transcoding.codec); the walks over
# bodies are recursive, so a deeper document is refused before any of them.
MAX_DEPTH = 100


class TooDeep(Exception):
    pass


@dataclass(frozen=True)
class Reference:
    """`text` as written (braces included); `source` an item/part id or a named source;
    `path` the field names and list indices after it (after `.body` for items)."""

    text: str
    source: str
    path: tuple[str, ...]


class Syntax:
    """Which references a document may hold: `{{<id>.body[.<segment>...]}}` for the ids
    in `known`, and `{{<name>.<segment>[...]}}` for each named source in `sources`."""

    _ITEM = re.compile(r"^([A-Za-z0-9_-]{1,64})\.body((?:\.[^.{}]+)*)$")

    def __init__(self, sources: frozenset[str] = frozenset(), hint: str = "") -> None:
        self.sources = sources
        self.hint = hint or (
            "write {{<id>.body.<field>}}, with list indices as numbers (e.g. {{list.body.books.0.name}})"
        )
        self._named = re.compile(rf"^({'|'.join(sorted(sources))})((?:\.[^.{{}}]+)+)$") if sources else None

    def parse(self, inner: str) -> Reference | None:
        text = "{{" + inner + "}}"
        if self._named is not None:
            named = self._named.match(inner)
            if named is not None:
                return Reference(text, named.group(1), tuple(named.group(2).split(".")[1:]))
        item = self._ITEM.match(inner)
        if item is not None and item.group(1) not in self.sources:
            return Reference(text, item.group(1), tuple(item.group(2).split(".")[1:]))
        return None


BATCH = Syntax()


def references(text: str, where: str, syntax: Syntax, known: frozenset[str] = frozenset()) -> Iterator[Reference]:
    """The references in `text`; double braces that start with a known id or source but are
    not a reference are a 400 naming `where`."""
    for match in BRACES.finditer(text):
        inner = match.group(1)
        ref = syntax.parse(inner)
        if ref is not None:
            yield ref
        elif inner.split(".", 1)[0].strip() in known | syntax.sources:
            raise errors.BadRequest(
                f"{where}: {match.group(0)!r} is not a valid reference; {syntax.hint}", field=where
            )


def body_references(value: Any, where: str, syntax: Syntax, known: frozenset[str], depth: int = 0) -> list[Reference]:
    """Every reference in the strings of a JSON value; TooDeep past MAX_DEPTH, a 400 for a
    number JSON cannot carry."""
    if isinstance(value, str):
        return list(references(value, where, syntax, known))
    if isinstance(value, (list, dict)) and depth >= MAX_DEPTH:
        raise TooDeep()
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in body_references(v, f"{where}[{i}]", syntax, known, depth + 1)]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in body_references(v, f"{where}.{k}", syntax, known, depth + 1)]
    if isinstance(value, float) and not math.isfinite(value):
        raise errors.BadRequest(f"{where}: number out of range for a double", field=where)
    return []


def follow(value: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (object keys, list indices) inside a JSON value, or ABSENT."""
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return ABSENT
    return value


def as_text(ref: Reference, value: Any, where: str) -> str:
    """A value to put inside a longer string: strings, numbers and booleans only."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    kind = "null" if value is None else type(value).__name__.replace("dict", "an object").replace("list", "an array")
    raise errors.BadRequest(
        f"{where}: reference {ref.text} is {kind}; only a string, number or boolean can sit inside a longer string",
        field=where,
    )


Resolve = Callable[[Reference, str], Any]  # (reference, where) -> its value, or ABSENT


def substitute(value: Any, resolve: Resolve, syntax: Syntax, where: str) -> Any:
    """`value` with its references resolved. A string that is one whole reference takes the
    value's JSON type; a string holding an ABSENT reference is ABSENT itself, and ABSENT
    object members and list elements are left out."""
    if isinstance(value, str):
        refs = list(references(value, where, syntax))
        if not refs:
            return value
        if len(refs) == 1 and refs[0].text == value:
            return resolve(refs[0], where)
        values = {}
        for ref in refs:
            found = resolve(ref, where)
            if found is ABSENT:
                return ABSENT
            values[ref.text] = as_text(ref, found, where)
        return BRACES.sub(lambda m: values.get(m.group(0), m.group(0)), value)
    if isinstance(value, list):
        items = (substitute(v, resolve, syntax, f"{where}[{i}]") for i, v in enumerate(value))
        return [v for v in items if v is not ABSENT]
    if isinstance(value, dict):
        members = ((k, substitute(v, resolve, syntax, f"{where}.{k}")) for k, v in value.items())
        return {k: v for k, v in members if v is not ABSENT}
    return value


def substitute_url(url: str, resolve: Resolve, syntax: Syntax) -> str:
    """A URL with its references resolved, each value percent-encoded except `/` (so resource
    names such as shelves/1 stay paths)."""
    refs = list(references(url, "url", syntax))
    if not refs:
        return url

    def replace(match: re.Match[str]) -> str:
        ref = next((r for r in refs if r.text == match.group(0)), None)
        if ref is None:
            return match.group(0)
        return quote(as_text(ref, resolve(ref, "url"), "url"), safe="/")

    return BRACES.sub(replace, url)
