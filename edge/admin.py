"""The admin listener's app: reload, introspection and API keys, never on the public port.

FastAPI is used here, off the hot path, where its routing and docs help. The
listener has no authentication of its own: whoever reaches it can reload the
gateway and mint API keys, so it binds to loopback by default (`admin.host`).
"""
from __future__ import annotations

import os
import re
import signal
from typing import Any

from fastapi import FastAPI, HTTPException, Response

from .auth.keystore import NewApiKey, StoredKeys
from .backends import BackendRegistry
from .observability.metrics import render_metrics
from .state.errors import StoreUnavailable


SUPERVISOR_ENV = "EDGE_SUPERVISOR_PID"


_KEY_ID = re.compile(r"^[0-9a-f]{16}$")


def _stored_keys(gateway: Any) -> StoredKeys:
    """The running gateway's stored API keys (`auth.api_key_store`), or a 404 saying they are off."""
    core = getattr(gateway, "core", None)
    authenticator = getattr(core, "authenticator", None)
    keys = getattr(authenticator, "stored_keys", None)
    if keys is None:
        raise HTTPException(404, "stored API keys are off: set auth.api_key_store in the config")
    return keys


def build_admin_app(registry: BackendRegistry, gateway: Any = None) -> FastAPI:
    """`gateway` is the running GatewayApp (its core holds the API key store)."""
    app = FastAPI(title="edge admin", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/admin/reload")
    async def reload() -> dict:
        """Re-read every backend's descriptors now and swap the route table."""
        report = await registry.reload()
        supervisor = os.environ.get(SUPERVISOR_ENV)
        if supervisor:  # under `--workers N`: the supervisor forwards SIGHUP to every worker
            os.kill(int(supervisor), signal.SIGHUP)
        return report.as_dict() | {"generation": registry.generation}

    @app.get("/admin/routes")
    async def routes() -> dict:
        table = registry.table
        return {
            "generation": registry.generation,
            "routes": [
                {
                    "http_method": r.binding.http_method,
                    "path": r.template,
                    "method": r.full_method,
                    "backend": r.backend,
                    "body": r.binding.body,
                }
                for r in table.routes
            ],
            "problems": [str(p) for p in registry.problems],
        }

    @app.get("/admin/backends")
    async def backends() -> dict:
        return registry.status()

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text; aggregated over every worker under --workers N."""
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    @app.post("/admin/keys", status_code=201)
    async def add_key(request: NewApiKey) -> dict:
        """A new API key: the answer is the only place the key itself ever appears."""
        keys = _stored_keys(gateway)
        try:
            key, entry = await keys.add(request)
        except StoreUnavailable as exc:
            raise HTTPException(503, f"API key store unavailable: {exc}") from None
        return {"key": key, **entry.public(), "shared": keys.shared}

    @app.get("/admin/keys")
    async def list_keys() -> dict:
        """Stored keys (and the config file's, which only a config change can remove); never the keys."""
        keys = _stored_keys(gateway)
        try:
            stored = await keys.list()
        except StoreUnavailable as exc:
            raise HTTPException(503, f"API key store unavailable: {exc}") from None
        config_keys = gateway.core.authenticator.api_keys.entries()
        return {
            "shared": keys.shared,
            "revocation_bound_seconds": keys.config.cache_ttl,
            "keys": [e.public() | {"source": "store"} for e in stored]
            + [
                {"id": e.sha256[:16], "principal": e.principal, "scopes": e.scopes, "tier": e.tier, "source": "config"}
                for e in config_keys
            ],
        }

    @app.delete("/admin/keys/{key_id}")
    async def revoke_key(key_id: str) -> dict:
        """Revoke a stored key: refused here at once, by every gateway within the cache TTL."""
        keys = _stored_keys(gateway)
        if not _KEY_ID.match(key_id):
            raise HTTPException(400, "a key id is 16 lower-case hex digits (see GET /admin/keys)")
        try:
            removed = await keys.revoke(key_id)
        except StoreUnavailable as exc:
            raise HTTPException(503, f"API key store unavailable: {exc}") from None
        if not removed:
            if any(e.sha256.startswith(key_id) for e in gateway.core.authenticator.api_keys.entries()):
                raise HTTPException(409, f"key {key_id} is in the config file (auth.api_keys): remove it there")
            raise HTTPException(404, f"no stored key {key_id}")
        return {"revoked": key_id, "effective_everywhere_within_seconds": keys.config.cache_ttl}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app
