"""The batch request document (`{"requests": [...]}`) parsed and validated into `Item`s.

Any structural problem is a 400 for the whole batch, naming the item and key; the
references an item holds (edge/references.py) add to its dependencies, and the
dependency graph is checked (edge/graph.py) before anything runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from transcoding import errors
from transcoding.codec import load_json

from .batch_config import BatchConfig
from .graph import GraphError, check_graph
from .references import ABSENT, BATCH, MAX_DEPTH, TooDeep, body_references, references

__all__ = ["ITEM_ID", "Item", "parse_batch"]

ITEM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_METHOD = re.compile(r"^[A-Za-z]{1,16}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_ITEM_KEYS = frozenset({"id", "method", "url", "headers", "body", "dependsOn"})
_ABSENT: Any = ABSENT


@dataclass
class Item:
    """One validated entry of `requests`."""

    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any  # a JSON value, or _ABSENT
    depends_on: tuple[str, ...]  # dependsOn plus the items its references name
    has_references: bool


def parse_batch(body: bytes, config: BatchConfig) -> list[Item]:
    """The validated items, in request order; any structural problem is a 400 for the whole batch."""
    if not body.strip():
        raise errors.BadRequest('the batch body is empty; send {"requests": [...]}')
    try:
        # The JSON rules of a call alone (UTF-8, no duplicate keys, no NaN): orjson would keep
        # the last of two equal keys, so an item could show one value and send another.
        document = load_json(body)
    except errors.BadRequest as exc:
        raise errors.BadRequest(exc.message.replace("malformed JSON body", "the batch body is not valid JSON")) from None
    if not isinstance(document, dict) or "requests" not in document:
        raise errors.BadRequest('the batch body must be a JSON object {"requests": [...]}')
    unknown = sorted(set(document) - {"requests"})
    if unknown:
        raise errors.BadRequest(f"unknown key(s) in the batch body: {', '.join(unknown)}", field=unknown[0])
    raw_items = document["requests"]
    if not isinstance(raw_items, list):
        raise errors.BadRequest("requests must be an array", field="requests")
    if not raw_items:
        raise errors.BadRequest("requests is empty: a batch needs at least one item", field="requests")
    if len(raw_items) > config.max_items:
        raise errors.BadRequest(
            f"the batch has {len(raw_items)} requests; at most {config.max_items} are allowed", field="requests"
        )
    known = frozenset(raw["id"] for raw in raw_items if isinstance(raw, dict) and isinstance(raw.get("id"), str))
    items = [_parse_item(i, raw, known) for i, raw in enumerate(raw_items)]
    try:
        check_graph([item.id for item in items], {item.id: item.depends_on for item in items})
    except GraphError as exc:
        raise errors.BadRequest(str(exc), field="requests") from None
    return items


def _parse_item(index: int, raw: Any, known: frozenset[str]) -> Item:
    where = f"requests[{index}]"
    if not isinstance(raw, dict):
        raise errors.BadRequest(f"{where} must be an object with id, method and url", field=where)
    unknown = sorted(set(raw) - _ITEM_KEYS)
    if unknown:
        raise errors.BadRequest(
            f"{where}: unknown key(s) {', '.join(unknown)}; an item has {', '.join(sorted(_ITEM_KEYS))}",
            field=f"{where}.{unknown[0]}",
        )
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
        raise errors.BadRequest(
            f"{where}.id must be a string of 1-64 letters, digits, '_' or '-', got {item_id!r}", field=f"{where}.id"
        )
    method = raw.get("method", "GET")
    if not isinstance(method, str) or not _METHOD.match(method):
        raise errors.BadRequest(f"{where}.method must be an HTTP method such as GET or POST", field=f"{where}.method")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        raise errors.BadRequest(
            f"{where}.url must be a path on this gateway starting with '/', such as /v1/shelves?pageSize=10",
            field=f"{where}.url",
        )
    if "#" in url:
        raise errors.BadRequest(f"{where}.url must not carry a fragment ('#')", field=f"{where}.url")
    headers_raw = raw.get("headers", {})
    if not isinstance(headers_raw, dict):
        raise errors.BadRequest(f"{where}.headers must be an object of name -> string", field=f"{where}.headers")
    headers: dict[str, str] = {}
    for name, value in headers_raw.items():
        if not _HEADER_NAME.match(name):
            raise errors.BadRequest(f"{where}.headers: {name!r} is not a valid header name", field=f"{where}.headers")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise errors.BadRequest(
                f"{where}.headers.{name} must be a single-line string", field=f"{where}.headers.{name}"
            )
        headers[name.lower()] = value
    depends = raw.get("dependsOn", [])
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise errors.BadRequest(f"{where}.dependsOn must be an array of item ids", field=f"{where}.dependsOn")
    body = raw.get("body", _ABSENT)
    if body is None:
        body = _ABSENT
    found = list(references(url, f"{where}.url", BATCH, known))
    if body is not _ABSENT:
        try:
            found += body_references(body, f"{where}.body", BATCH, known)
        except TooDeep:
            raise errors.BadRequest(
                f"{where}.body is nested more than {MAX_DEPTH} levels deep", field=f"{where}.body"
            ) from None
    implied = [r.source for r in found]
    return Item(
        id=item_id,
        method=method.upper(),
        url=url,
        headers=headers,
        body=body,
        depends_on=tuple(dict.fromkeys([*depends, *implied])),
        has_references=bool(found),
    )
