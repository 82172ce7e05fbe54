"""The admin listener's app: reload and introspection, never on the public port.

FastAPI is used here, off the hot path, where its routing and docs help.
"""
from __future__ import annotations

import os
import signal

from fastapi import FastAPI, Response

from .observability.metrics import render_metrics

from .backends import BackendRegistry


SUPERVISOR_ENV = "EDGE_SUPERVISOR_PID"


def build_admin_app(registry: BackendRegistry) -> FastAPI:
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

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app
