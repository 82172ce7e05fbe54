"""Composed routes in the OpenAPI document (edge/openapi.py's `extra_operations`): one
operation per composed route, its 200 an object of the parts' reply schemas."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from transcoding.routes import RouteTable
from transcoding.template import parse_template

from .compose_plan import plan_route

if TYPE_CHECKING:
    from .config import GatewayConfig

__all__ = ["openapi_operations"]


def openapi_operations(config: GatewayConfig) -> Any:
    """For edge/openapi.py (`extra_operations`): one operation per composed route, its 200
    an object of the parts' reply schemas (or `{"error": Status}` for `include` parts)."""

    def add(doc: Any, table: RouteTable) -> None:
        for route in config.compose:
            plan, _ = plan_route(route, table)
            verb = route.http_method.lower()
            path = _openapi_path(route.template)
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in route.variables
            ]
            parameters += [{"name": name, "in": "query", "schema": {"type": "string"},
                            "description": "Read by the composed parts."} for name in route.query_names]
            parameters.append({"name": "fields", "in": "query", "schema": {"type": "string"}, "description": (
                "Partial response: the keys (and fields under them) to answer, e.g. `"
                + ",".join(p.output_key for p in route.parts if p.output)[:80]
                + "`; parts whose keys are left out are not called.")})
            status = doc.base_schemas.ref("google.rpc.Status")
            properties: dict[str, Any] = {}
            requirements: list[Any] = []
            for part in route.parts:
                part_plan = plan.parts[part.id]
                if part_plan.route is not None and doc.security is not None:
                    requirements.append(doc.security.requirements_for(part_plan.route.full_method))
                if not part.output:
                    continue
                if part_plan.route is not None and part_plan.problem is None:
                    schema = doc.message_schema(part_plan.route.method.output_type, part_plan.route.options)
                else:
                    schema = {"description": part_plan.problem or "not served"}
                if part.on_error == "include":
                    error = {"type": "object", "properties": {"error": status}, "required": ["error"]}
                    schema = {"oneOf": [schema, error]}
                properties[part.output_key] = schema
            operation: dict[str, Any] = {
                "tags": ["composed"],
                "operationId": "compose_" + re.sub(r"[^A-Za-z0-9]+", "_", route.route).strip("_"),
                "summary": route.summary or f"Composed: {', '.join(p.id for p in route.parts)}",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "Each part's reply under its key.", "content": {
                        "application/json": {"schema": {"type": "object", "properties": properties}}}},
                    "default": {"description": "The error of a part whose on_error is fail (its status and body).",
                                "content": {"application/json": {"schema": status}}},
                },
                "x-edge-composed": [
                    {"id": p.id, "grpcMethod": p.method, "onError": p.on_error, "output": p.output} for p in route.parts
                ],
            }
            merged = _merge_security(requirements)
            if merged is not None:
                operation["security"] = merged
            doc.paths.setdefault(path, {})[verb] = operation

    return add


def _openapi_path(text: str) -> str:
    """`/v1/screens/{shelf}` as OpenAPI writes it: each variable one parameter, named as in the template."""
    template = parse_template(text)
    starts = {v.start: v for v in template.variables}
    parts, i = [], 0
    while i < len(template.segments):
        variable = starts.get(i)
        if variable is None:
            segment = template.segments[i]
            parts.append(segment.value if segment.kind == "literal" else "*" if segment.kind == "single" else "**")
            i += 1
        else:
            parts.append("{" + variable.field_path[0] + "}")
            i = len(template.segments) if variable.end is None else variable.end
    return "/" + "/".join(parts) + (f":{template.verb}" if template.verb else "")


def _merge_security(requirements: list[Any]) -> list[Any] | None:
    """The parts' requirements as one: public when every part is, else a bearer token with
    every scope any part needs (and the other credentials the parts accept)."""
    known = [r for r in requirements if r is not None]
    if not known:
        return None
    if all(r == [] for r in known):
        return []
    scopes: set[str] = set()
    others: list[dict[str, Any]] = []
    for options in known:
        for option in options:
            if "bearer" in option:
                scopes.update(option["bearer"])
            elif option and option not in others:
                others.append(option)
    return [{"bearer": sorted(scopes)}, *others]
