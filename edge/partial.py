"""The `fields` system parameter on REST routes: partial responses.

A REST-adapter concern (when the protocol-neutral core arrives this moves with
the REST adapter): the mask comes from the query string and trims the JSON a
route prints; the selection logic itself is pure (transcoding/partial.py).

For a route, `fields` is the gateway's system parameter when:

* the route answers one JSON document whose top is an object or a list of
  objects (not a stream, not google.api.HttpBody, not a scalar
  `response_body`): elsewhere `fields=...` is a 400 saying why;
* and the method's request message has no field of its own named `fields`
  (either spelling): there the method's field wins, `fields=...` is an
  ordinary query parameter for it and nothing is trimmed, unless the route
  matches `partial_responses.override` (the gateway's parameter wins; the
  method's field cannot then be set from the query);
* and the route does not match `partial_responses.opt_out` (how a backend team
  keeps `fields` for itself without a field of that name: the parameter then
  reaches the query mapper like any other, a 400 if the method has no such
  field).

What the mask does: the reply (200 only; errors pass whole) keeps only the
selected fields, in the spelling the route prints. Each distinct `fields` value
is parsed and checked against the reply's message type once per route and
kept (at most `max_masks_per_route`, refusals included); an unknown field is a
400 naming it, json or proto spelling alike. Where the request message has a
top-level `google.protobuf.FieldMask read_mask` field (AIP-157's name, that
exact name and type) that the client left empty, the mask is also set there as
FieldMask paths (proto names, relative to the reply message, as Google's
read masks are), so the backend can skip work; `read_mask: false` turns that
off.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from transcoding import errors
from transcoding.partial import FieldsError, Level, Selection, apply, compile_fields
from transcoding.routes import Route

from .matching import Matcher, MatchList, Target

__all__ = ["PartialResponses", "PartialResponsesConfig", "Mask", "SYSTEM_PARAMETER"]

SYSTEM_PARAMETER = "fields"
_READ_MASK = "read_mask"
_FIELD_MASK = "google.protobuf.FieldMask"


class PartialResponsesConfig(BaseModel):
    """`partial_responses`: the `fields` system parameter (see edge/partial.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="`fields` trims replies; false: it is an ordinary query parameter everywhere")
    opt_out: MatchList = Field(
        default_factory=list,
        description="routes (match patterns) where `fields` is not the gateway's: it reaches the method's query mapping",
    )
    override: MatchList = Field(
        default_factory=list,
        description="routes whose request has a `fields` field of its own where the gateway's parameter wins anyway",
    )
    read_mask: bool = Field(True, description="also pass the mask as the request's FieldMask `read_mask`, where it has one")
    max_masks_per_route: int = Field(256, ge=0, le=100_000, description="distinct `fields` values kept parsed, per route")

    _opt_out: Matcher[bool] = PrivateAttr()
    _override: Matcher[bool] = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._opt_out = Matcher([(self.opt_out, True)])
        self._override = Matcher([(self.override, True)])


@dataclass(frozen=True, slots=True)
class Mask:
    """One request's mask: what to trim, and the read_mask paths for the backend."""

    plan: "RoutePlan"
    selection: Selection | None  # None: everything (`fields=*` or empty)

    def prepare(self, request: Any) -> None:
        """Set the request's `read_mask`, where the route has one and the client left it empty."""
        read_mask = self.plan.read_mask
        if read_mask is None or self.selection is None or not self.selection.paths:
            return
        current = getattr(request, read_mask)
        if current.paths:
            return  # the client's own read_mask stands
        prefix = self.plan.read_mask_prefix
        current.paths.extend(prefix + p for p in self.selection.paths)

    def trim(self, status: int, body: bytes) -> bytes:
        """The body with only the selected fields (a 200's; anything else as it is)."""
        if self.selection is None or status != 200 or not body:
            return body
        return orjson.dumps(apply(self.selection, orjson.loads(body)))


@dataclass
class RoutePlan:
    """What `fields` means on one route, decided once."""

    active: bool  # the gateway's system parameter here
    root: Level | None  # what the reply prints; None: nothing to select, `refusal` says why
    refusal: str = ""
    use_proto_names: bool = False
    read_mask: str | None = None  # the request's FieldMask field to fill
    read_mask_prefix: str = ""  # response_body's path, when the route prints one field
    limit: int = 256
    masks: dict[str, Mask | FieldsError] = field(default_factory=dict)

    def mask(self, text: str) -> Mask:
        found = self.masks.get(text)
        if found is None:
            try:
                assert self.root is not None
                found = Mask(self, compile_fields(text, self.root, use_proto_names=self.use_proto_names))
            except FieldsError as exc:
                found = exc
            if len(self.masks) < self.limit:
                self.masks[text] = found
        if isinstance(found, FieldsError):
            raise errors.BadRequest(str(found), field=SYSTEM_PARAMETER)
        return found


class PartialResponses:
    """The per-route plans of the REST adapter; plans are dropped when the route table is rebuilt."""

    def __init__(self, config: PartialResponsesConfig) -> None:
        self.config = config
        self._plans: dict[int, tuple[Route, RoutePlan]] = {}

    def clear(self, *_: Any) -> None:
        self._plans = {}

    def plan(self, route: Route) -> RoutePlan:
        entry = self._plans.get(id(route))
        if entry is not None and entry[0] is route:
            return entry[1]
        plan = plan_for(route, self.config)
        if len(self._plans) < 100_000:  # routes are few; the table's rebuild clears it
            self._plans[id(route)] = (route, plan)
        return plan

    def take(self, route: Route, query: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], Mask | None]:
        """The query without the system parameter, and its mask (None: no `fields` here)."""
        plan = self.plan(route)
        if not plan.active:
            return query, None
        values = [value for key, value in query if key == SYSTEM_PARAMETER]
        if not values:
            return query, None
        if len(values) > 1:
            raise errors.BadRequest("query parameter 'fields' given more than once", field=SYSTEM_PARAMETER)
        rest = [pair for pair in query if pair[0] != SYSTEM_PARAMETER]
        if plan.root is None:
            raise errors.BadRequest(f"fields: {plan.refusal}", field=SYSTEM_PARAMETER)
        return rest, plan.mask(values[0])


def plan_for(route: Route, config: PartialResponsesConfig) -> RoutePlan:
    """What `fields` means on `route` under `config` (see the module docstring)."""
    target = Target.of(route)
    request_type = route.method.input_type
    own = any(f.name == SYSTEM_PARAMETER or f.json_name == SYSTEM_PARAMETER for f in request_type.fields)
    active = config.enabled and not config._opt_out.any(target) and (not own or config._override.any(target))
    if not active:
        return RoutePlan(False, None)
    codec = route.response_codec
    limit = config.max_masks_per_route
    use_proto_names = route.options.use_proto_names
    if route.server_streaming:
        return RoutePlan(True, None, "this route answers a stream; partial responses apply to single replies", limit=limit)
    if codec.is_http_body:
        return RoutePlan(True, None, "this route answers raw bytes (google.api.HttpBody), not JSON fields", limit=limit)
    prefix = ""
    if codec.response_body:
        leaf = route.method.output_type
        for name in codec.response_body.split("."):
            f = leaf.fields_by_name[name]
            leaf = f.message_type
        root = Level.of_field(f)
        prefix = codec.response_body + "."
        if root.kind == "leaf":
            return RoutePlan(True, None, f"this route answers the field {codec.response_body!r} alone, "
                             "which has no fields to select", limit=limit)
    else:
        root = Level.of_message(route.method.output_type)
        if root.kind == "leaf":
            return RoutePlan(True, None, f"this route answers a {route.method.output_type.full_name}, "
                             "which prints as a JSON value of its own", limit=limit)
    read_mask = None
    if config.read_mask:
        candidate = request_type.fields_by_name.get(_READ_MASK)
        if (candidate is not None and not candidate.is_repeated and candidate.message_type is not None
                and candidate.message_type.full_name == _FIELD_MASK and root.kind == "message"):
            read_mask = candidate.name
    return RoutePlan(True, root, use_proto_names=use_proto_names, read_mask=read_mask, read_mask_prefix=prefix,
                     limit=limit)


def openapi_parameters(config: PartialResponsesConfig) -> Any:
    """For edge/openapi/ (`extra_parameters`): the `fields` query parameter of each route where it is the gateway's."""

    def parameters(route: Route) -> list[dict[str, Any]]:
        plan = plan_for(route, config)
        if not plan.active or plan.root is None:
            return []
        example = _example(plan.root)
        return [{
            "name": SYSTEM_PARAMETER,
            "in": "query",
            "schema": {"type": "string"},
            "description": (
                "Partial response: only these fields of the reply, comma-separated, with `a/b` or `a.b` for a "
                "field inside another and `a(b,c)` for several (e.g. "
                f"`{example}`); `*` is every field. An unknown field is a 400."
                + (" Also sent to the backend as the request's `read_mask`." if plan.read_mask else "")
            ),
        }]

    return parameters


def _example(root: Level) -> str:
    """A mask for this reply to show in the description: `books(name,title),nextPageToken`."""
    if root.kind != "message" or root.descriptor is None or not root.descriptor.fields:
        return "*"
    names = []
    for f in root.descriptor.fields[:2]:
        sub = Level.of_field(f)
        inner = sub.descriptor.fields[:2] if sub.kind == "message" and sub.descriptor is not None else []
        names.append(f"{f.json_name}({','.join(g.json_name for g in inner)})" if len(inner) == 2 else f.json_name)
    return ",".join(names)
