"""What `edge check` finds beyond schema errors: files that are not there, and
policies that name gRPC methods no backend offers (a typo there silently
leaves a method unprotected or unlimited)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from transcoding.routes import RouteTable

from .config import GatewayConfig

_METHOD = re.compile(r"^([A-Za-z_][\w.]*)/([A-Za-z_*][\w*]*)$")


def missing_files(config: GatewayConfig) -> list[str]:
    problems = []
    for where, path in _files(config):
        if not Path(path).is_file():
            problems.append(f"{where}: file {path} does not exist")
    return problems


def _files(config: GatewayConfig) -> Iterator[tuple[str, Path | str]]:
    tls = config.listen.tls
    if tls is not None:
        yield "listen.tls.cert_file", tls.cert_file
        yield "listen.tls.key_file", tls.key_file
        for name in ("chain_file", "client_ca_file"):
            if getattr(tls, name) is not None:
                yield f"listen.tls.{name}", getattr(tls, name)
    for i, b in enumerate(config.backends):
        if b.descriptors != "reflection":
            yield f"backends.{i}.descriptors", b.descriptors
        if b.tls is not None:
            for name in ("ca_file", "cert_file", "key_file"):
                if getattr(b.tls, name) is not None:
                    yield f"backends.{i}.tls.{name}", getattr(b.tls, name)
    if config.auth is not None:
        for i, issuer in enumerate(config.auth.issuers):
            if issuer.jwks_file is not None:
                yield f"auth.issuers.{i}.jwks_file", issuer.jwks_file


def unknown_methods(config: GatewayConfig, table: RouteTable) -> list[str]:
    """Policy matches of the form `pkg.Service/Method` (or `pkg.Service/*`) naming nothing served."""
    methods = {r.full_method for r in table.routes}
    services = {m.partition("/")[0] for m in methods}
    problems = []
    for where, pattern in _method_patterns(config):
        m = _METHOD.match(pattern)
        if m is None:
            continue
        service, method = m.groups()
        if service not in services:
            problems.append(f"{where}: {pattern!r} names service {service}, which no backend serves")
        elif "*" not in method and pattern not in methods:
            problems.append(f"{where}: {pattern!r} names no method of {service}")
    return problems


def _method_patterns(config: GatewayConfig) -> Iterator[tuple[str, str]]:
    if config.auth is not None:
        for i, rule in enumerate(config.auth.policies):
            yield f"auth.policies.{i}.match", rule.match
    if config.rate_limits is not None:
        for i, policy in enumerate(config.rate_limits.policies):
            for pattern in policy.match:
                yield f"rate_limits.policies.{i}.match", pattern
    if config.idempotency is not None:
        for i, route in enumerate(config.idempotency.routes):
            for pattern in route.match:
                yield f"idempotency.routes.{i}.match", pattern
