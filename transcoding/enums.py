"""Enum values from text, the one way query parameters and JSON bodies share.

Both anchors read an enum from text by its value name, then by a defined number
(``"2"``); Envoy's `case_insensitive_enum_parsing` then tries the text
upper-cased with ``-`` read as ``_`` (``dark-blue`` -> ``DARK_BLUE``), for path
and query bindings and JSON bodies alike, since all three go through the same
protobuf writer there. `enum_parser` builds that lookup once per enum type;
`CaseInsensitiveEnums` applies the last step to a parsed JSON body before
json_format (or the fast decoder) sees it, so neither needs to know the option
and a body without such spellings is left untouched.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

__all__ = ["CaseInsensitiveEnums", "enum_parser", "normalized_enum_name"]

_INT_RE = re.compile(r"[+-]?[0-9]{1,11}\Z")
_NULL_VALUE = "google.protobuf.NullValue"


def normalized_enum_name(text: str) -> str:
    """Envoy's normalisation: ASCII upper case, ``-`` read as ``_``."""
    return text.replace("-", "_").upper() if text.isascii() else text


def enum_parser(enum: EnumDescriptor, *, case_insensitive: bool = False) -> Callable[[str], int]:
    """text -> enum number: the value name, else a defined number, else (when
    `case_insensitive`) the normalised name. ValueError naming the enum otherwise."""
    names = {value.name: value.number for value in enum.values}
    numbers = frozenset(names.values())
    full_name = enum.full_name

    def parse(text: str) -> int:
        number = names.get(text)
        if number is not None:
            return number
        if _INT_RE.match(text) and int(text) in numbers:
            return int(text)
        if case_insensitive:
            number = names.get(normalized_enum_name(text))
            if number is not None:
                return number
        raise ValueError(f"{text!r} is not a value of enum {full_name}")

    return parse


class CaseInsensitiveEnums:
    """Rewrites, in a parsed JSON body, every enum string that is not a value name
    but whose normalised form is, to that name; everything else is left for the
    decoder to accept or refuse as it would. One plan per message type, built on
    first use; a body costs one walk, and only routes with the option on pay it."""

    def __init__(self) -> None:
        self._plans: dict[str, dict[str, tuple[Any, ...]]] = {}

    def rewrite(self, value: Any, descriptor: Descriptor, depth: int = 0) -> None:
        if type(value) is not dict or depth > 100:
            return
        plan = self._plan(descriptor)
        for key, item in value.items():
            step = plan.get(key)
            if step is None or item is None:
                continue
            kind, target, repeated, is_map = step
            if is_map:
                if type(item) is dict:
                    for map_key, element in item.items():
                        item[map_key] = self._one(kind, target, element, depth)
            elif repeated:
                if type(item) is list:
                    item[:] = [self._one(kind, target, element, depth) for element in item]
            else:
                value[key] = self._one(kind, target, item, depth)

    def _one(self, kind: str, target: Any, item: Any, depth: int) -> Any:
        if kind == "enum":
            if type(item) is str and item not in target:
                return target.get(normalized_enum_name(item), item)  # type: ignore[union-attr]
            return item
        self.rewrite(item, target, depth + 1)
        return item

    def _plan(self, descriptor: Descriptor) -> dict[str, tuple[Any, ...]]:
        plan = self._plans.get(descriptor.full_name)
        if plan is not None:
            return plan
        plan = self._plans[descriptor.full_name] = {}
        for field in descriptor.fields:
            step = _step(field)
            if step is not None:
                plan[field.name] = plan[field.json_name] = step
        return plan


def _step(field: FieldDescriptor) -> tuple[Any, ...] | None:
    """(kind, enum names or message type, repeated, map) for a field that can hold
    an enum somewhere below it; None for the rest."""
    value_field = field
    is_map = bool(field.message_type is not None and field.message_type.GetOptions().map_entry)
    if is_map:
        value_field = field.message_type.fields_by_name["value"]
    if value_field.enum_type is not None and value_field.enum_type.full_name != _NULL_VALUE:
        names = {v.name: v.name for v in value_field.enum_type.values}
        return ("enum", names, field.is_repeated and not is_map, is_map)
    message = value_field.message_type
    if message is not None and not message.full_name.startswith("google.protobuf.") and _holds_enum(message, set()):
        return ("message", message, field.is_repeated and not is_map, is_map)
    return None


def _holds_enum(descriptor: Descriptor, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.enum_type is not None and field.enum_type.full_name != _NULL_VALUE:
            return True
        if field.message_type is not None and _holds_enum(field.message_type, seen):
            return True
    return False
