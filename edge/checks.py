"""What `edge check` finds beyond schema errors: files that are not there, and
`match` patterns (auth, rate limits, idempotency, compression) that match no
route of the loaded descriptors (a typo there silently leaves a method
unprotected or unlimited)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from transcoding.routes import RouteTable

from .config import GatewayConfig
from .matching import Pattern, Target, patterns_of
from .ratelimit.config import DEFAULT_EXEMPT


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


def unmatched_patterns(config: GatewayConfig, table: RouteTable) -> list[str]:
    """Every `match` pattern, in every section, that matches no route of the loaded descriptors.

    A pattern that matches nothing is almost always a typo or a stale name, and it
    fails quietly: the method stays unprotected, unlimited or compressed. Sections:
    auth policies, rate-limit policies and `exempt` (its defaults name the gateway's
    own endpoints and are not checked), idempotency routes (the batch endpoint
    counts as a route there), compression opt-outs and CORS routes."""
    targets = [Target.of(route) for route in table.routes]
    methods = {t.full_method for t in targets}
    services = {m.partition("/")[0] for m in methods}
    batch = [Target("", "POST", config.batch.path)] if config.batch is not None else []
    problems = []
    for where, text, extra in _patterns(config, batch):
        pattern = Pattern(text)
        if any(pattern.matches(t) for t in targets) or any(pattern.matches(t) for t in extra):
            continue
        problems.append(f"{where}: {pattern.text!r} {_why_unmatched(pattern, targets, methods, services)}")
    return problems


def _why_unmatched(pattern: Pattern, targets: list[Target], methods: set[str], services: set[str]) -> str:
    if pattern.kind == "method":
        service, _, method = pattern.body.partition("/")
        if "*" not in service and method and service not in services:
            return f"names service {service}, which no backend serves"
        if "*" not in pattern.body and pattern.body not in methods:
            return f"names no method of {service}"
    if pattern.kind == "route" and pattern.verb is not None:
        any_verb = Pattern(pattern.body)
        verbs = sorted({t.http_method for t in targets if any_verb.matches(t)})
        if verbs:
            return f"matches no route: {pattern.body} is served only for {', '.join(verbs)}"
    return "matches no route of the loaded descriptors"


def _patterns(config: GatewayConfig, batch: list[Target]) -> Iterator[tuple[str, str, list[Target]]]:
    if config.auth is not None:
        for i, rule in enumerate(config.auth.policies):
            for text in patterns_of(rule.match):
                yield f"auth.policies.{i}.match", text, []
    if config.rate_limits is not None:
        for i, policy in enumerate(config.rate_limits.policies):
            for text in policy.match:
                yield f"rate_limits.policies.{i}.match", text, []
        for text in config.rate_limits.exempt:
            if text not in DEFAULT_EXEMPT:
                yield "rate_limits.exempt", text, []
    if config.idempotency is not None:
        for i, route in enumerate(config.idempotency.routes):
            for text in route.match:
                yield f"idempotency.routes.{i}.match", text, batch
    for text in config.compression.opt_out:
        yield "compression.opt_out", text, []
    if config.cors is not None:
        for i, rule in enumerate(config.cors.routes):
            for text in rule.match:
                yield f"cors.routes.{i}.match", text, []
