"""The OpenAPI 3.1 document: one operation per route of the live route table.

The document describes what the gateway does, not what the protos might mean:
it is built from the same `RouteTable` requests are matched against, so a
route left out by a conflict is absent here too. Schemas come from
schemas.py, path strings and parameters from paths.py, comments from
comments.py; this module assembles operations (query parameters, bodies,
responses, security, tags, ids) and the document around them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from google.rpc import status_pb2

from transcoding.codec import HTTP_BODY
from transcoding.httprule import bindings_for
from transcoding.options import StreamFormat, TranscodingOptions
from transcoding.routes import Route, RouteTable

from .comments import comment_index, summary
from .paths import PathItems, PathParam, Paths, field_chain
from .schemas import BINARY, Printing, Schemas, message_type_of, print_note, prints_differently

__all__ = ["OPENAPI_VERSION", "OPERATION_KINDS", "STATUS_SCHEMA", "SecurityInfo", "build_openapi"]

OPENAPI_VERSION = "3.1.0"
STATUS_SCHEMA = "google.rpc.Status"
OPERATION_KINDS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_STATUS_DESCRIPTION = (
    "The error body of every failed call: the proto3 JSON form of google.rpc.Status. "
    "`code` is the gRPC status code, `details` carry typed error details (google.rpc.ErrorInfo, ...)."
)


def _edge_version() -> str:
    try:
        return metadata.version("edge-gateway")
    except metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True)
class SecurityInfo:
    """What the auth policies say, in OpenAPI terms.

    `schemes` goes to ``components.securitySchemes`` as is; `requirements_for`
    gets ``package.Service/Method`` and returns that operation's security
    requirements (``[{"bearer": ["scope"]}]``; ``[]`` for a public route) or
    None to say nothing.
    """

    schemes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requirements_for: Callable[[str], list[dict[str, list[str]]] | None] = lambda full_method: None


class _Document:
    """The document under construction. `extra_operations` callbacks (composed routes,
    edge/compose.py) get it and use `paths`, `security`, `base_schemas` and
    `message_schema`."""

    def __init__(
        self,
        *,
        comments: Mapping[str, str],
        options: TranscodingOptions,
        expand_path_patterns: bool,
        security: SecurityInfo | None,
        extra_parameters: Callable[[Route], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.options = options
        self.extra_parameters = extra_parameters  # parameters the gateway adds to routes (`fields`)
        self.comments = comments
        self._expand = expand_path_patterns
        self._components: dict[str, dict[str, Any]] = {}
        self._base = Printing.of(options)
        self._variants: dict[Printing, tuple[Schemas, Paths]] = {}
        self.schemas, self.paths_helper = self.base_schemas, _ = self._variant(options)
        self.security = security
        self._items = PathItems()
        self.paths = self._items.paths  # extra_operations (composed routes) add to it too
        self.operation_ids: set[str] = set()
        self.skipped: list[dict[str, str]] = []
        self.tags: dict[str, str] = {}  # service full name -> tag
        self._bindings: dict[str, list] = {}

    def _variant(self, options: TranscodingOptions) -> tuple[Schemas, Paths]:
        printing = Printing.of(options)
        found = self._variants.get(printing)
        if found is None:
            schemas = Schemas(self.comments, printing, suffix=printing.suffix(self._base), components=self._components)
            found = self._variants[printing] = (schemas, Paths(schemas, self._expand))
        return found

    def message_schema(self, descriptor: Descriptor, options: TranscodingOptions) -> dict[str, Any]:
        """The schema (a `$ref`) of a message as a backend with `options` prints it: for
        `extra_operations` (composed routes) describing replies of their own."""
        return self._variant(options)[0].message(descriptor)

    def finish(self) -> dict[str, dict[str, Any]]:
        """Every variant's components (building one may not add to another's)."""
        for schemas, _ in self._variants.values():
            schemas.finish()
        return dict(sorted(self._components.items()))

    # -- operations

    def add(self, route: Route) -> None:
        # names, enums and nulls as this route's backend prints them
        self.schemas, self.paths_helper = self._variant(route.options)
        binding = route.binding
        kind = binding.http_method.lower()
        if kind not in OPERATION_KINDS:
            self._skip(route, f"OpenAPI 3.1 has no operation for the HTTP method {binding.http_method}")
            return
        input_type = route.method.input_type
        path, params = self.paths_helper.convert(binding.template, input_type, route.options.path_unescape)
        placed = self._items.place(path, kind, params)
        if placed is None:
            self._skip(route, f"{binding.http_method} {path} is already described by another operation")
            return
        path = placed
        operation = self._operation(route, kind, params)
        self.paths[path][kind] = operation

    def _skip(self, route: Route, reason: str) -> None:
        self.skipped.append({
            "method": route.binding.http_method,
            "path": route.template,
            "grpcMethod": route.full_method,
            "reason": reason,
        })

    def _operation(self, route: Route, kind: str, path_params: list[PathParam]) -> dict[str, Any]:
        method = route.method
        service = method.containing_service
        binding = route.binding
        operation: dict[str, Any] = {"tags": [self._tag(service)], "operationId": self._operation_id(route)}
        comment = self.comments.get(method.full_name, "")
        if comment:
            operation["summary"] = summary(comment)
            if comment != operation["summary"]:
                operation["description"] = comment
        else:
            operation["summary"] = f"{service.name}.{method.name}"
        parameters = [p.as_parameter() for p in path_params]
        parameters.extend(self._query(route))
        if self.extra_parameters is not None:
            parameters.extend(self.extra_parameters(route))
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self._request_body(route)
        operation["responses"] = self._responses(route, kind)
        if self.security is not None:
            requirements = self.security.requirements_for(route.full_method)
            if requirements is not None:
                operation["security"] = requirements
        operation["x-edge-grpc-method"] = route.full_method
        operation["x-edge-template"] = binding.template.text
        streaming = {(False, True): "server", (True, False): "client", (True, True): "bidi"}.get(
            (method.client_streaming, method.server_streaming)
        )
        if streaming:
            operation["x-edge-streaming"] = streaming
        return operation

    def _tag(self, service: Any) -> str:
        tag = self.tags.get(service.full_name)
        if tag is None:
            taken = set(self.tags.values())
            tag = service.name if service.name not in taken else service.full_name
            self.tags[service.full_name] = tag
        return tag

    def _operation_id(self, route: Route) -> str:
        method = route.method
        bindings = self._bindings.get(method.full_name)
        if bindings is None:
            bindings = self._bindings[method.full_name] = bindings_for(method)
        index = next((i for i, b in enumerate(bindings) if b == route.binding), 0)
        suffix = f"_{index}" if index else ""
        service = method.containing_service
        candidates = [
            f"{service.name}_{method.name}{suffix}",
            f"{service.full_name.replace('.', '_')}_{method.name}{suffix}",
        ]
        for candidate in candidates:
            if candidate not in self.operation_ids:
                break
        else:
            n = 1
            while f"{candidates[-1]}_{n}" in self.operation_ids:
                n += 1
            candidate = f"{candidates[-1]}_{n}"
        self.operation_ids.add(candidate)
        return candidate

    # -- query parameters

    def _query(self, route: Route) -> list[dict[str, Any]]:
        """The route's query parameters as its query rules list them
        (`RouteQuery.parameters`): the same object that reads them per request."""
        out: list[dict[str, Any]] = []
        for query_parameter in route.request_codec.query.parameters(use_proto_names=self.schemas.use_proto_names):
            parameter: dict[str, Any] = {"name": query_parameter.name, "in": "query"}
            f = query_parameter.field
            if f is None:  # a name the options always ignore
                parameter["schema"] = {"type": "string"}
                parameter["description"] = "Accepted and ignored by the gateway (`ignored_query_parameters`)."
                out.append(parameter)
                continue
            schema = self.schemas.field(f, describe=False)
            if query_parameter.kind == "json":
                parameter["content"] = {"application/json": {"schema": schema}}
            else:
                parameter["schema"] = schema
            if query_parameter.kind == "map":
                parameter["style"], parameter["explode"] = "deepObject", True
            probe: dict[str, Any] = {}
            self.schemas.annotate(probe, f)
            extra = {
                "list": "Repeat the parameter for each element.",
                "map": f"One parameter per entry: `{query_parameter.name}[key]=value`.",
            }.get(query_parameter.kind)
            mask = route.request_codec.patch_mask
            if mask is not None and f.full_name == mask.full_name:
                extra = ("When left out, the gateway sets it to the fields the request body names "
                         "(`patch_update_mask`, as grpc-gateway does).")
            if extra:
                probe["description"] = "\n\n".join(p for p in (probe.get("description", ""), extra) if p)
            if probe.get("description"):
                parameter["description"] = probe["description"]
            if probe.get("deprecated"):
                parameter["deprecated"] = True
            out.append(parameter)
        return out

    # -- bodies

    def _request_body(self, route: Route) -> dict[str, Any]:
        binding = route.binding
        method = route.method
        if binding.body == "*":
            raw = method.input_type.full_name == HTTP_BODY
            schema = None if raw else self.schemas.message(method.input_type)
            bound = binding.template.field_paths()
            description = "The request message." + (
                f" Fields bound by the path ({', '.join(f'`{p}`' for p in bound)}) take the path's values." if bound else ""
            )
        else:
            chain = field_chain(method.input_type, binding.body.split("."))
            leaf = chain[-1]
            leaf_type = message_type_of(leaf)
            raw = leaf_type is not None and not leaf.is_repeated and leaf_type.full_name == HTTP_BODY
            schema = None if raw else self.schemas.field(leaf)
            description = f"The request field `{binding.body}`." + (
                f" {self.comments[leaf.full_name]}" if leaf.full_name in self.comments else ""
            )
        if raw:
            return {
                "description": description + " Raw bytes, passed on with their Content-Type (google.api.HttpBody).",
                "content": {"*/*": {"schema": dict(BINARY)}},
            }
        assert schema is not None
        if method.client_streaming:
            bound = "path and query parameters" if binding.body != "*" else "path parameters"
            return {
                "description": description + (
                    " A stream of request messages, each body as above: a JSON array (Envoy's form; "
                    f"the {bound} fill the first message only), or NDJSON, one message per line "
                    f"(or JSON values one after another; the {bound} fill every message)."
                ),
                "content": {
                    "application/json": {"schema": {"type": "array", "items": schema}},
                    "application/x-ndjson": {"schema": schema},
                },
            }
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def _responses(self, route: Route, kind: str) -> dict[str, Any]:
        if kind == "head":
            return {
                "200": {"description": "Success; a HEAD reply has no body."},
                "default": {"description": "An error (its HTTP status; a HEAD reply has no body)."},
            }
        error = {
            "description": "An error: the HTTP status follows the gRPC code; the body is a google.rpc.Status.",
            "content": {"application/json": {"schema": self.schemas.ref(STATUS_SCHEMA)}},
        }
        method = route.method
        codec = route.response_codec
        output = method.output_type
        if codec.is_http_body:
            content = {"*/*": {"schema": dict(BINARY)}}
            what = "Raw bytes with the Content-Type the backend set (google.api.HttpBody)"
        else:
            if codec.response_body:
                leaf = field_chain(output, codec.response_body.split("."))[-1]
                schema = self.schemas.field(leaf)
                what = f"The reply field `{codec.response_body}` alone"
            else:
                schema = self.schemas.message(output)
                what = f"The reply message ({output.full_name})"
            content = _stream_content(route.options.stream_format, schema) if method.server_streaming else {
                "application/json": {"schema": schema}}
        if method.server_streaming:
            if codec.is_http_body:
                description = f"A stream: {what}, chunk after chunk."
            else:
                description = (
                    f"A stream of reply messages, each {what[0].lower() + what[1:]} as JSON, in the format the "
                    f"`Accept` header asks for (default `{route.options.stream_format.value}`): application/x-ndjson "
                    "(a line each), application/json (a JSON array, or grpc-gateway's `{\"result\": ...}` lines "
                    "where that is the default) or text/event-stream (a `data:` event each). An error after the "
                    "stream started arrives as a last `{\"error\": <google.rpc.Status>}` line or array element, "
                    "or an `event: error` event."
                )
        else:
            description = f"{what}."
        if not codec.is_http_body and prints_differently(route.options, self.options):
            description += " " + print_note(route.options)  # this backend's own print options
        return {"200": {"description": description, "content": content}, "default": error}


def _stream_content(default: StreamFormat, item: dict[str, Any]) -> dict[str, Any]:
    """A server stream's media types (edge/streaming.py), the route's default first."""
    if default is StreamFormat.GRPC_GATEWAY:
        json_form = {"type": "object", "properties": {"result": item}}
    else:
        json_form = {"type": "array", "items": item}
    forms = {
        StreamFormat.NDJSON: ("application/x-ndjson", {"schema": item}),
        StreamFormat.JSON_ARRAY: ("application/json", {"schema": json_form}),
        StreamFormat.GRPC_GATEWAY: ("application/json", {"schema": json_form}),
        StreamFormat.SSE: ("text/event-stream", {"schema": {"type": "string"}}),
    }
    media, first = forms[default]
    content = {media: first}
    for fmt in (StreamFormat.NDJSON, StreamFormat.JSON_ARRAY, StreamFormat.SSE):
        other, form = forms[fmt]
        content.setdefault(other, form)
    return content


def build_openapi(
    table: RouteTable,
    *,
    title: str = "edge",
    version: str = _edge_version(),
    servers: list[str] | None = None,
    security: SecurityInfo | None = None,
    options: TranscodingOptions | None = None,
    files: Iterable[descriptor_pb2.FileDescriptorProto] = (),
    expand_path_patterns: bool = False,
    description: str | None = None,
    extra_parameters: Callable[[Route], list[dict[str, Any]]] | None = None,
    extra_operations: Callable[[Any, RouteTable], None] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in `table`.

    `extra_parameters(route)` and `extra_operations(document, table)` add what
    the gateway itself serves beyond the protos (edge/apidocs.py
    `document_options`: the `fields` parameter, composed routes).

    `options` (default: the table's own, the gateway-wide transcoding options)
    say how field names and zero values are printed, so the schemas say what
    responses hold; `files` are the loaded FileDescriptorProtos, read for
    comments only (see `registry_files`).
    """
    options = table.options if options is None else options
    doc = _Document(
        comments=comment_index(files),
        options=options,
        expand_path_patterns=expand_path_patterns,
        security=security,
        extra_parameters=extra_parameters,
    )
    for route in table.routes:
        doc.add(route)
    if extra_operations is not None:
        extra_operations(doc, table)
    doc.base_schemas.message(status_pb2.Status.DESCRIPTOR)  # error bodies: the gateway's own printing
    components: dict[str, Any] = {"schemas": doc.finish()}
    components["schemas"][STATUS_SCHEMA]["description"] = _STATUS_DESCRIPTION
    if security is not None and security.schemes:
        components["securitySchemes"] = dict(security.schemes)
    names_note = "proto field names" if options.use_proto_names else "lowerCamelCase JSON names"
    info: dict[str, Any] = {
        "title": title,
        "version": version,
        "description": description
        or (
            f"REST/JSON transcoding of gRPC services; bodies are proto3 JSON with {names_note} "
            "(requests may use either spelling). " + print_note(options)
            + " An operation whose backend prints otherwise says so in its response. "
            "Errors are google.rpc.Status objects."
        ),
    }
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    tags = []
    for full_name, tag in doc.tags.items():
        entry: dict[str, Any] = {"name": tag}
        if full_name in doc.comments:
            entry["description"] = doc.comments[full_name]
        entry["x-edge-grpc-service"] = full_name
        tags.append(entry)
    if tags:
        document["tags"] = tags
    document["paths"] = doc.paths
    document["components"] = components
    if doc.skipped:
        document["x-edge-skipped"] = doc.skipped
    return document

