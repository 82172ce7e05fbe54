"""What `edge check` finds beyond schema errors: files that are not there,
`match` patterns (auth, rate limits, idempotency, compression) that match no
route of the loaded descriptors (a typo there silently leaves a method
unprotected or unlimited), and -- as warnings -- templates that the anchor a
backend's profile follows (Envoy, grpc-gateway) would route differently than
this gateway does."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Iterator

from transcoding.httprule import bindings_for
from transcoding.matcher import normalize_segment
from transcoding.options import (
    PROFILES,
    CustomVerbs,
    EmptyDoubleWildcard,
    PathControlChars,
    PathUnescape,
    TranscodingOptions,
)
from transcoding.overlap import example_overlap
from transcoding.routes import Route, RouteTable
from transcoding.template import PathTemplate, Variable

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


# ---- templates an anchor would route differently (issue 12 item 19) ----------------------

_ANCHOR_NAMES = {"envoy": "Envoy", "grpc-gateway": "grpc-gateway"}

_UNESCAPE_EFFECT = {
    PathUnescape.ALL_EXCEPT_RESERVED: "keeps reserved characters' escapes (`%2F`, `%3A`, `%40`...) as sent",
    PathUnescape.ALL_EXCEPT_SLASH: "decodes every escape but `%2F`",
    PathUnescape.ALL_CHARACTERS: "decodes every escape, `%2F` too",
    PathUnescape.LEGACY: "decodes the whole path before routing, so `%2F` splits segments",
}


def profile_anchors(config: GatewayConfig) -> dict[str, str | None]:
    """Each backend's anchor: the one its profile follows (its own profile, else the top
    level's); None for the `edge` profile, which follows no single anchor."""
    top = config.transcoding.profile or "edge"
    anchors: dict[str, str | None] = {}
    for b in config.backends:
        name = (b.transcoding.profile if b.transcoding is not None else None) or top
        anchors[b.name] = name if name in _ANCHOR_NAMES else None
    return anchors


def anchor_warnings(table: RouteTable, anchors: dict[str, str | None]) -> list[str]:
    """Where the routes would be routed differently by the anchor a backend's profile
    follows than by this gateway with the path options in force: templates the anchor
    refuses, path options set away from the anchor's default where a template makes
    them matter, and (grpc-gateway) overlapping templates whose winner there is the one
    registered last, not the more specific. Warnings, not problems: the gateway serves
    all of it."""
    ours = table.options
    warnings: list[str] = []
    for anchor in sorted({a for a in anchors.values() if a is not None}):
        theirs = PROFILES[anchor]
        if ours.path_control_chars is not theirs.path_control_chars:
            refused = ours.path_control_chars is PathControlChars.REJECT
            warnings.append(
                f"paths: encoded control characters (%00-%1F, %7F) are {'refused (400)' if refused else 'passed into the field'} "
                f"here, {'passed into the field' if refused else 'refused'} by {_ANCHOR_NAMES[anchor]} (path_control_chars)"
            )
    seen: set[tuple[str, str]] = set()
    for route in table.routes:
        anchor = anchors.get(route.backend)
        key = (route.binding.http_method, route.template)
        if anchor is None or key in seen:
            continue
        seen.add(key)
        where = f"backend {route.backend}: {route.method.full_name}: {key[0]} {key[1]}"
        for message in _template_differences(route, table, PROFILES[anchor], _ANCHOR_NAMES[anchor]):
            warnings.append(f"{where}: {message}")
    warnings.extend(_order_differences(table, anchors))
    return warnings


def _template_differences(route: Route, table: RouteTable, theirs: TranscodingOptions, anchor: str) -> Iterator[str]:
    ours, template = table.options, route.binding.template
    segments, dw = template.segments, template.double_wildcard
    if anchor == "Envoy" and dw is not None and any(s.kind != "literal" for s in segments[dw + 1 :]):
        yield "Envoy refuses this template (only literal segments may follow '**'); edge serves it"
    if ours.path_unescape is not theirs.path_unescape:
        legacy = PathUnescape.LEGACY in (ours.path_unescape, theirs.path_unescape)
        for variable in template.variables:
            name = ".".join(variable.field_path)
            if _spans_several(template, variable):
                yield (
                    f"{{{name}}} spans several segments: edge {_UNESCAPE_EFFECT[ours.path_unescape]}, "
                    f"{anchor} {_UNESCAPE_EFFECT[theirs.path_unescape]} (path_unescape)"
                )
            elif legacy:
                splits = ours.path_unescape is PathUnescape.LEGACY
                yield (
                    f"{{{name}}}: a `%2F` in it {'splits the path' if splits else 'is data'} here and "
                    f"{'is data' if splits else 'splits the path'} under {anchor} (path_unescape)"
                )
    if ours.empty_double_wildcard is not theirs.empty_double_wildcard and dw is not None:
        empty_here = ours.empty_double_wildcard is EmptyDoubleWildcard.ANYWHERE
        if dw < len(segments) - 1:
            yield (
                f"the '**' before more segments may match no segment {'here' if empty_here else f'under {anchor}'} "
                f"but needs one {f'under {anchor}' if empty_here else 'here'} (empty_double_wildcard)"
            )
        for variable in template.variables:
            if variable.start <= dw < variable.end and variable.end - variable.start > 1:
                yield (
                    f"{{{'.'.join(variable.field_path)}}}: where its '**' matches nothing it holds an empty segment "
                    f"(a '/' more) {'here' if empty_here else f'under {anchor}'} (empty_double_wildcard)"
                )
    if ours.custom_verbs is not theirs.custom_verbs:
        yield from _verb_differences(route, table, ours.custom_verbs, theirs.custom_verbs, anchor)


def _spans_several(template: PathTemplate, variable: Variable) -> bool:
    return variable.end - variable.start > 1 or template.segments[variable.start].kind == "multi"


def _takes_colon_data(template: PathTemplate) -> bool:
    """Could the template's last segment hold ':xyz' as data (a wildcard, or a '**' at the end)?"""
    return bool(template.segments) and template.verb is None and template.segments[-1].kind != "literal"


_VERB_EFFECT = {
    CustomVerbs.DECLARED: "answers 404",
    CustomVerbs.ANY: "answers 404",
    CustomVerbs.DECLARED_OR_SEGMENT: "tries the templates without a verb, `:{verb}` kept as data (such as {example})",
}


def _verb_differences(route: Route, table: RouteTable, ours: CustomVerbs, theirs: CustomVerbs, anchor: str) -> Iterator[str]:
    template = route.binding.template
    absorbing = [
        r for r in table.routes if r.binding.http_method == route.binding.http_method and _takes_colon_data(r.binding.template)
    ]
    if template.verb is not None and _VERB_EFFECT[ours] != _VERB_EFFECT[theirs] and absorbing:
        fill = {"verb": template.verb, "example": absorbing[0].template}
        yield (
            f"for a path ending in `:{template.verb}` that no `:{template.verb}` template matches, edge "
            f"{_VERB_EFFECT[ours].format(**fill)}; {anchor} {_VERB_EFFECT[theirs].format(**fill)} (custom_verbs)"
        )
    if _takes_colon_data(template) and CustomVerbs.ANY in (ours, theirs):
        data_here = ours is not CustomVerbs.ANY
        yield (
            f"a last segment ending in `:xyz` that no template declares is data {'here' if data_here else f'under {anchor}'}, "
            f"a verb that matches nothing {f'under {anchor}' if data_here else 'here'} (custom_verbs)"
        )


def _order_differences(table: RouteTable, anchors: dict[str, str | None]) -> list[str]:
    """Pairs of templates for one HTTP method that match a common path, where grpc-gateway
    (which tries templates in registration order, the last registered first) would pick
    another than edge (which picks the more specific)."""
    gateway = [r for r in table.routes if anchors.get(r.backend) == "grpc-gateway"]
    by_method: dict[str, list[Route]] = {}
    for route in gateway:
        by_method.setdefault(route.binding.http_method, []).append(route)
    warnings = []
    for http_method, routes in sorted(by_method.items()):
        for a, b in _candidate_pairs(routes):
            path = example_overlap(a.binding.template, b.binding.template)
            if path is None:
                continue
            try:
                winner = table.matcher.lookup(http_method, path).value
            except (LookupError, ValueError):
                continue
            if winner is not a and winner is not b:
                continue
            loser = b if winner is a else a
            if a.method.containing_service is b.method.containing_service:
                if _registration(winner) > _registration(loser):
                    continue  # grpc-gateway tries the later-registered first: the same pick
                theirs = f"grpc-gateway to {loser.method.full_name} ({loser.binding.http_method} {loser.template}, registered later)"
            else:
                theirs = "grpc-gateway to whichever of the two services your server registered last"
            warnings.append(
                f"{http_method} {a.template} ({a.method.full_name}) and {http_method} {b.template} ({b.method.full_name}) "
                f"both match {path}: edge routes it to {winner.method.full_name} (matcher precedence), {theirs}"
            )
    return warnings


def _candidate_pairs(routes: list[Route]) -> Iterator[tuple[Route, Route]]:
    """Pairs that may overlap, in table order. Templates whose leading literals differ
    never do, so routes are split by their literal at each position of their fixed prefix
    (before any '**'), recursively; one with a wildcard there is paired with all."""
    position = {id(r): i for i, r in enumerate(routes)}
    pairs: list[tuple[Route, Route]] = []

    def split(group: list[Route], i: int) -> None:
        if len(group) < 2:
            return
        by_literal: dict[str, list[Route]] = {}
        wild: list[Route] = []
        for route in group:
            template = route.binding.template
            fixed = template.double_wildcard if template.double_wildcard is not None else len(template.segments)
            segment = template.segments[i] if i < fixed else None
            if segment is not None and segment.kind == "literal":
                by_literal.setdefault(normalize_segment(segment.value), []).append(route)
            else:
                wild.append(route)
        pairs.extend(combinations(wild, 2))
        for members in by_literal.values():
            pairs.extend((a, b) for a in members for b in wild)
            split(members, i + 1)

    split(routes, 0)
    for a, b in sorted(pairs, key=lambda p: sorted((position[id(p[0])], position[id(p[1])]))):
        first, second = (a, b) if position[id(a)] < position[id(b)] else (b, a)
        if _may_overlap(first.binding.template, second.binding.template):
            yield first, second


def _may_overlap(a: PathTemplate, b: PathTemplate) -> bool:
    """A cheap no: templates without '**' of different lengths never match one path."""
    return a.double_wildcard is not None or b.double_wildcard is not None or len(a.segments) == len(b.segments)


def _registration(route: Route) -> tuple[int, int]:
    """Where grpc-gateway's generated code registers a binding within its service: methods
    in declaration order, each method's bindings in order (and each Handle goes first)."""
    return route.method.index, bindings_for(route.method).index(route.binding)
