"""Serving the live OpenAPI document and its docs page on the public listener.

The document is rebuilt only when the route table's generation changes (a
reload that changed descriptors), so serving it costs a dict lookup. Paths
use expanded patterns (`/v1/shelves/{shelf}/books/{book}`) so that clients
generated from it work on multi-segment routes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends import BackendRegistry
from .config import GatewayConfig
from .http import JSON_CONTENT_TYPE, Send, send_response
from .openapi import OpenApiCache, SecurityInfo, docs_html, registry_files

if TYPE_CHECKING:
    from .auth import PolicyResolver

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
