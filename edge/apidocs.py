"""Serving the OpenAPI document (edge/openapi/ builds it): `/openapi.json` and the
`/docs` page on the public listener, and `edge openapi` from a config.

The document is rebuilt only when the route table's generation changes (a
reload that changed descriptors), so serving it costs a dict lookup. Paths
use expanded patterns (`/v1/shelves/{shelf}/books/{book}`) so that clients
generated from it work on multi-segment routes.
"""
from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from google.protobuf import descriptor_pb2

from transcoding.routes import RouteTable

from .backends import BackendRegistry
from .config import GatewayConfig
from .http import JSON_CONTENT_TYPE, Send, send_response
from .openapi import OPERATION_KINDS, SecurityInfo, build_openapi

if TYPE_CHECKING:
    from .auth import PolicyResolver
    from .backends import ReloadReport

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "OAuth2 access token (JWT, or an opaque token checked by introspection)"},
}


def security_info(config: GatewayConfig, policies: "PolicyResolver | None") -> SecurityInfo | None:
    """Security schemes and each method's requirement, from the same policies the gateway enforces."""
    if config.auth is None or policies is None:
        return None
    schemes = dict(_SCHEMES)
    if config.auth.api_keys or config.auth.api_key_store is not None:
        schemes["apiKey"] = {"type": "apiKey", "in": "header", "name": config.auth.api_key_header}

    def requirements_for(full_method: str) -> list[dict] | None:
        policy = policies.resolve(full_method)
        if policy.auth == "none":
            return []
        scopes = sorted(policy.scopes_all_of | {s for group in policy.scopes_any_of for s in group})
        options: list[dict] = [{"bearer": scopes}]
        if "apiKey" in schemes:
            options.append({"apiKey": []})
        if policy.auth == "optional":
            options.append({})
        return options

    return SecurityInfo(schemes=schemes, requirements_for=requirements_for)


def document_options(config: GatewayConfig) -> dict[str, Any]:
    """What the config adds to the document beyond the protos (`build_openapi` keywords)."""
    options: dict[str, Any] = {}
    if config.partial_responses.enabled:
        from .partial import openapi_parameters

        options["extra_parameters"] = openapi_parameters(config.partial_responses)
    if config.compose:
        from .compose import openapi_operations

        options["extra_operations"] = openapi_operations(config)
    return options


class ApiDocs:
    def __init__(self, config: GatewayConfig, registry: BackendRegistry, policies: "PolicyResolver | None") -> None:
        self.registry = registry
        self.cache = OpenApiCache(
            security=security_info(config, policies),
            expand_path_patterns=True,
            **document_options(config),
        )

    async def respond(self, path: str, send: Send, id_header: tuple[bytes, bytes]) -> None:
        reg = self.registry
        files = registry_files(reg)
        if path == OPENAPI_PATH:
            body = self.cache.get(reg.table, reg.generation, files)
            await send_response(send, 200, [(b"content-type", JSON_CONTENT_TYPE), id_header], body)
        else:
            page = docs_html(OPENAPI_PATH, self.cache.document(reg.table, reg.generation, files))
            await send_response(send, 200, [(b"content-type", b"text/html; charset=utf-8"), id_header], page.encode())


def registry_files(registry: BackendRegistry) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every loaded FileDescriptorProto of every backend (for comments)."""
    return [f for state in registry.backends.values() if state.descriptors for f in state.descriptors.files]


class OpenApiCache:
    """The document of one route-table generation, rebuilt when it changes.

    `options` are `build_openapi` keyword arguments. The returned bytes and
    document are shared: do not mutate the document.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._generation: object = None
        self._document: dict[str, Any] | None = None
        self._body = b""
        self.builds = 0

    def document(
        self, table: RouteTable, generation: object, files: Iterable[descriptor_pb2.FileDescriptorProto] = ()
    ) -> dict[str, Any]:
        if self._document is None or generation != self._generation:
            document = build_openapi(table, files=files, **self.options)
            self._body = orjson.dumps(document)
            self._document, self._generation = document, generation
            self.builds += 1
        return self._document

    def get(
        self, table: RouteTable, generation: object, files: Iterable[descriptor_pb2.FileDescriptorProto] = ()
    ) -> bytes:
        """The JSON document (orjson bytes) for this generation."""
        self.document(table, generation, files)
        return self._body


async def build_from_config(config: GatewayConfig, **options: Any) -> tuple[dict[str, Any] | None, ReloadReport]:
    """Load every backend's descriptors once (as `edge check` does) and build
    the document; None when some backend failed to load."""
    registry = BackendRegistry(config)
    try:
        report = await registry.start(watch=False)
        if report.failed:
            return None, report
        return build_openapi(registry.table, files=registry_files(registry), **options), report
    finally:
        await registry.close()


_SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"


def docs_html(openapi_url: str, document: Mapping[str, Any] | None = None, *, title: str = "API documentation") -> str:
    """An interactive page: Swagger UI from a CDN, over a server-rendered list
    of the operations that stays useful when the CDN cannot be reached."""
    url_js = json.dumps(openapi_url).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    rows = []
    if document is not None:
        for path, item in document.get("paths", {}).items():
            for kind, operation in item.items():
                if kind not in OPERATION_KINDS:
                    continue
                rows.append(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>".format(
                        html.escape(kind.upper()),
                        html.escape(path),
                        html.escape(operation.get("summary", "")),
                        html.escape(operation.get("operationId", "")),
                    )
                )
    table = (
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Operation</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{_SWAGGER_UI}/swagger-ui.css">
<style>body{{font-family:sans-serif;margin:0}}#fallback{{padding:1em 2em}}td,th{{text-align:left;padding:.2em .8em}}</style>
</head>
<body>
<div id="swagger-ui"></div>
<section id="fallback">
<h1>{html.escape(title)}</h1>
<p>The machine-readable document is at <a href="{html.escape(openapi_url)}">{html.escape(openapi_url)}</a>.</p>
{table}
</section>
<script src="{_SWAGGER_UI}/swagger-ui-bundle.js" crossorigin="anonymous"></script>
<script>
if (window.SwaggerUIBundle) {{
  window.ui = SwaggerUIBundle({{url: {url_js}, dom_id: "#swagger-ui", deepLinking: true}});
  document.getElementById("fallback").hidden = true;
}}
</script>
</body>
</html>
"""
