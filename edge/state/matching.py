"""Which requests a state-backed policy (a rate limit, an idempotency rule) covers.

One glob syntax for both features: 'pkg.Service/*' or 'pkg.Service/Method'
matches the gRPC method, '/v1/...' the route template, 'POST /v1/...' the HTTP
method and route, and '*' everything. `*` crosses '/' (fnmatch semantics).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Sequence

_HTTP = re.compile(r"^[A-Z]+ /")


class RouteMatcher:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.any = "*" in patterns
        self._method = [re.compile(fnmatch.translate(p)) for p in patterns
                        if p != "*" and not p.startswith("/") and not _HTTP.match(p)]
        self._route = [re.compile(fnmatch.translate(p)) for p in patterns if p.startswith("/")]
        self._http = [re.compile(fnmatch.translate(p)) for p in patterns if _HTTP.match(p)]

    def __call__(self, route: str, http_method: str, full_method: str) -> bool:
        """`route` is a template ("/v1/x/{id}"), or "METHOD template" as some callers name routes."""
        if self.any:
            return True
        if route and _HTTP.match(route):
            http_method, _, route = route.partition(" ")
        if full_method and any(r.match(full_method) for r in self._method):
            return True
        if route and any(r.match(route) for r in self._route):
            return True
        return bool(route) and any(r.match(f"{http_method.upper()} {route}") for r in self._http)
