"""Composed routes planned against a route table: which route each part runs as, its
request template checked against the method's input type (fields in either spelling,
references to earlier replies against those replies' types), and what `edge check`
reports about the `compose` section. Plans are made once per table (edge/compose.py
keeps them until a reload swaps the table).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from transcoding.partial import FieldsError, Level, Selection, compile_fields
from transcoding.routes import Route, RouteTable

from .compose_config import COMPOSE_SYNTAX, SOURCES, ComposePart, ComposeRoute
from .references import Reference

if TYPE_CHECKING:
    from .auth import EffectivePolicy
    from .config import GatewayConfig

__all__ = ["PartPlan", "RoutePlan", "compose_problems", "plan_route", "route_for"]

_T = FieldDescriptor


@dataclass
class PartPlan:
    part: ComposePart
    route: Route | None
    problem: str | None = None  # why the part cannot run (method not served, request not valid...)
    coerce: bool = False  # text references into bool fields: read "true"/"false" after substitution
    level: Level | None = None  # its reply, for `fields`
    query: bytes = b""  # `fields=...` of the part, for the REST adapter


@dataclass
class RoutePlan:
    config: ComposeRoute
    parts: dict[str, PartPlan]
    level: Level
    takes_credential: bool
    masks: dict[str, tuple[Selection | None, frozenset[str]] | FieldsError] = field(default_factory=dict)


def route_for(table: RouteTable, method: str) -> Route | None:
    """The route a part runs as: the method's first binding, one without response_body if any."""
    candidates = [r for r in table.routes if r.full_method == method]
    plain = [r for r in candidates if not r.response_codec.response_body]
    return (plain or candidates or [None])[0]


def plan_route(config: ComposeRoute, table: RouteTable,
               policy_of: Callable[[Route], EffectivePolicy | None] | None = None) -> tuple[RoutePlan, list[str]]:
    """The plan of one composed route against a table, and every problem found."""
    problems: list[str] = []
    parts: dict[str, PartPlan] = {}
    for part in config.parts:
        where = f"compose {config.route}: part {part.id!r}"
        route = route_for(table, part.method)
        plan = PartPlan(part, route)
        parts[part.id] = plan
        if route is None:
            plan.problem = f"{where}: method {part.method} is not served by any loaded backend"
        elif route.client_streaming or route.server_streaming:
            plan.problem = f"{where}: {part.method} streams; only unary methods can be parts"
        elif route.response_codec.is_http_body:
            plan.problem = f"{where}: {part.method} answers raw bytes (google.api.HttpBody), not JSON"
        if plan.problem is not None:
            problems.append(plan.problem)
            continue
        assert route is not None
        plan.level = Level.of_message(route.method.output_type)
        checker = _RequestCheck(where, config, parts)
        checker.message(part.request, route.method.input_type, "request")
        plan.coerce = checker.coerce
        if part.fields:
            try:
                compile_fields(part.fields, plan.level, use_proto_names=route.options.use_proto_names)
            except FieldsError as exc:
                checker.problems.append(f"{where}: {exc}")
            plan.query = b"fields=" + quote(part.fields, safe="").encode("ascii")
        if checker.problems:
            plan.problem = checker.problems[0]
            problems.extend(checker.problems)
    levels = {p.part.output_key: p.level or Level("free") for p in parts.values() if p.part.output}
    takes = False
    if policy_of is not None:
        for p in parts.values():
            if p.route is not None:
                policy = policy_of(p.route)
                takes = takes or (policy is not None and policy.auth != "none")
    return RoutePlan(config, parts, Level.of_keys(levels, f"the composed reply of {config.route}"), takes), problems


class _RequestCheck:
    """A part's request template against its input type: fields (either spelling), and
    references to earlier replies against those replies' types."""

    def __init__(self, where: str, config: ComposeRoute, parts: dict[str, PartPlan]) -> None:
        self.where = where
        self.config = config
        self.parts = parts
        self.problems: list[str] = []
        self.coerce = False

    def message(self, value: Any, descriptor: Descriptor, at: str) -> None:
        if descriptor.full_name.startswith("google.protobuf."):
            self._references(value, None, at)
            return
        if isinstance(value, str):
            self._references(value, None, at)
            return
        if not isinstance(value, dict):
            self.problems.append(f"{self.where}: {at} must be an object (a {descriptor.full_name})")
            return
        for key, item in value.items():
            f = descriptor.fields_by_name.get(key) or next((g for g in descriptor.fields if g.json_name == key), None)
            if f is None:
                self.problems.append(f"{self.where}: {at}.{key} names no field of {descriptor.full_name}")
                continue
            self.field(item, f, f"{at}.{key}")

    def field(self, value: Any, f: FieldDescriptor, at: str) -> None:
        message_type = f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
        is_map = message_type is not None and f.is_repeated and message_type.GetOptions().map_entry
        if is_map and isinstance(value, dict):
            value_field = message_type.fields_by_name["value"]
            for key, item in value.items():
                self.element(item, value_field, f"{at}.{key}")
        elif f.is_repeated and not is_map and isinstance(value, list):
            for i, item in enumerate(value):
                self.element(item, f, f"{at}[{i}]")
        else:
            self.element(value, f, at)

    def element(self, value: Any, f: FieldDescriptor, at: str) -> None:
        message_type = f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
        if message_type is not None and not isinstance(value, str):
            self.message(value, message_type, at)
            return
        if isinstance(value, str):
            whole = self._references(value, f, at)
            if whole is not None and whole.source in ("path", "query") and f.type == _T.TYPE_BOOL:
                self.coerce = True

    def _references(self, value: Any, f: FieldDescriptor | None, at: str) -> Reference | None:
        if not isinstance(value, str):
            return None
        refs = []
        for match in re.finditer(r"\{\{(.*?)\}\}", value):
            ref = COMPOSE_SYNTAX.parse(match.group(1))
            if ref is None:
                continue
            refs.append(ref)
            if ref.source not in SOURCES:
                self._reply_path(ref, at)
        return refs[0] if len(refs) == 1 and refs[0].text == value else None

    def _reply_path(self, ref: Reference, at: str) -> None:
        """`{{part.body.a.0.b}}` against the part's reply type, in the spelling it prints."""
        plan = self.parts.get(ref.source)
        if plan is None or plan.route is None or plan.level is None:
            return  # that part's own problem is reported
        descriptor: Descriptor | None = plan.route.method.output_type
        proto_names = plan.route.options.use_proto_names
        repeated = False
        for segment in ref.path:
            if repeated:
                if not segment.isdigit():
                    self.problems.append(f"{self.where}: {at}: {ref.text}: {segment!r} is not a list index")
                    return
                repeated = False
                continue
            if descriptor is None or descriptor.full_name.startswith("google.protobuf."):
                return  # a value whose inside the descriptors do not say (Struct, a map's value, a scalar)
            f = next((g for g in descriptor.fields if (g.name if proto_names else g.json_name) == segment), None)
            if f is None:
                self.problems.append(
                    f"{self.where}: {at}: {ref.text}: {descriptor.full_name} has no field {segment!r} in its JSON"
                )
                return
            message_type = f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
            is_map = message_type is not None and f.is_repeated and message_type.GetOptions().map_entry
            repeated = f.is_repeated and not is_map
            descriptor = None if is_map else message_type


def compose_problems(config: GatewayConfig, table: RouteTable) -> list[str]:
    """What `edge check` reports about `compose`: parts naming unknown methods or request
    fields, references to fields earlier replies do not have, routes shadowing proto routes."""
    problems: list[str] = []
    for route in config.compose:
        _, found = plan_route(route, table)
        problems.extend(found)
        verb, template = route.http_method, route.template
        for served in table.routes:
            if served.binding.http_method == verb and served.template == template:
                problems.append(f"compose {route.route}: shadows {served.full_method}'s route {verb} {template}")
    if config.batch is not None:
        for route in config.compose:
            if route.template == config.batch.path:
                problems.append(f"compose {route.route}: the batch endpoint {config.batch.path} answers this path")
    return problems
