"""Which auth a route demands: gateway config first, backend protos may only tighten.

Config policies are chosen by their `match` patterns (the syntax every section
shares, edge/matching.py): the most specific match wins whole (an exact route
with its verb, an exact route, an exact gRPC method, then globs by how much
they spell out: `pkg.Service/*` before `pkg.*` before `*`), and the config's
`default_policy` (auth required) applies when nothing matches.

A backend's proto may add scopes or require auth through the
`edge.options.v1` method/service options. It may relax the mode (`optional` or
`none`) only where the matching config policy says `allow_proto_none: true`;
elsewhere the relaxation is ignored and logged. Proto scopes on a route whose
config mode is weaker raise that route to `required` (scopes cannot be checked
without a credential).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pool import DescriptorPool

from edge import options_pb2
from edge.matching import Matcher, Target, patterns_of

from .config import AuthConfig, PolicyFields, PolicyRule

log = logging.getLogger("edge.auth.policy")

_MEMO_MAX = 4096

AuthMode = Literal["required", "optional", "none"]
_STRENGTH: dict[str, int] = {"none": 0, "optional": 1, "required": 2}
_PROTO_MODES: dict[int, AuthMode] = {
    options_pb2.AUTH_MODE_REQUIRED: "required",
    options_pb2.AUTH_MODE_OPTIONAL: "optional",
    options_pb2.AUTH_MODE_NONE: "none",
}


@dataclass(frozen=True)
class EffectivePolicy:
    """What one route demands. Every group in `scopes_any_of` must share at least one scope with the caller's."""

    auth: AuthMode = "required"
    scopes_all_of: frozenset[str] = frozenset()
    scopes_any_of: tuple[frozenset[str], ...] = ()
    issuers: frozenset[str] = frozenset()
    forward_token: bool | None = None  # None: as the token's issuer says (issuers[].forward_token)
    source: str = "default"

    @classmethod
    def from_fields(cls, fields: PolicyFields, source: str) -> EffectivePolicy:
        return cls(
            auth=fields.auth,
            scopes_all_of=frozenset(fields.scopes_all_of),
            scopes_any_of=(frozenset(fields.scopes_any_of),) if fields.scopes_any_of else (),
            issuers=frozenset(fields.issuers),
            forward_token=fields.forward_token,
            source=source,
        )


@dataclass(frozen=True)
class ProtoPolicy:
    """Auth declared in a backend's proto (service rule and method rule combined)."""

    mode: AuthMode | None = None
    scopes_all_of: frozenset[str] = frozenset()
    scopes_any_of: tuple[frozenset[str], ...] = ()


def _rule(options_bytes: bytes, options_cls: type, extension: object) -> options_pb2.AuthRule | None:
    # Re-parse into the default pool's options class: in a pool built from
    # reflection the extension is only an unknown field of the pool's own class.
    options = options_cls.FromString(options_bytes)
    if not options.HasExtension(extension):
        return None
    policy: options_pb2.MethodPolicy = options.Extensions[extension]
    return policy.auth if policy.HasField("auth") else None


def proto_policy(method: MethodDescriptor) -> ProtoPolicy | None:
    """The `edge.options.v1` auth rules of a method and its service, or None when neither has one."""
    service_rule = _rule(
        method.containing_service.GetOptions().SerializeToString(),
        descriptor_pb2.ServiceOptions,
        options_pb2.service_policy,
    )
    method_rule = _rule(method.GetOptions().SerializeToString(), descriptor_pb2.MethodOptions, options_pb2.method_policy)
    rules = [r for r in (service_rule, method_rule) if r is not None]
    if not rules:
        return None
    mode: AuthMode | None = None
    for rule in rules:  # the method's mode, when it states one, overrides the service's
        mode = _PROTO_MODES.get(rule.mode, mode)
    return ProtoPolicy(
        mode=mode,
        scopes_all_of=frozenset(s for r in rules for s in r.scopes_all_of if s),
        scopes_any_of=tuple(frozenset(s for s in r.scopes_any_of if s) for r in rules if any(r.scopes_any_of)),
    )


def pool_proto_lookup(pool: DescriptorPool) -> Callable[[str], ProtoPolicy | None]:
    """A `proto_options_lookup` for PolicyResolver reading methods from a descriptor pool."""
    memo: dict[str, ProtoPolicy | None] = {}

    def lookup(full_method_name: str) -> ProtoPolicy | None:
        if full_method_name not in memo:
            service_name, _, method_name = full_method_name.lstrip("/").partition("/")
            try:
                method = pool.FindServiceByName(service_name).methods_by_name[method_name]
            except KeyError:
                memo[full_method_name] = None
            else:
                memo[full_method_name] = proto_policy(method)
        return memo[full_method_name]

    return lookup


class PolicyResolver:
    """Resolves the effective policy of each route; build one per route table."""

    def __init__(
        self,
        policies: AuthConfig | list[PolicyRule],
        proto_options_lookup: Callable[[str], ProtoPolicy | None] | None = None,
        *,
        default: PolicyFields | None = None,
    ) -> None:
        """`policies` is the `auth` config (policies and default_policy) or just its policy list."""
        if isinstance(policies, AuthConfig):
            default = default or policies.default_policy
            policies = policies.policies
        self._rules: Matcher[PolicyRule] = Matcher((patterns_of(rule.match), rule) for rule in policies)
        self._lookup = proto_options_lookup
        self._default = default or PolicyFields()
        self._warned: set[str] = set()
        self._resolved: OrderedDict[tuple[object, ...], EffectivePolicy] = OrderedDict()

    def config_rule(
        self, full_method_name: str, http_method: str | None = None, template: str | None = None
    ) -> tuple[str, PolicyFields]:
        """The config policy that applies (the pattern that chose it, or 'default_policy')."""
        target = Target(full_method_name.lstrip("/"), (http_method or "").upper(), template or "")
        found = self._rules.best(target)
        if found is None:
            return "default_policy", self._default
        pattern, rule = found
        return pattern.text, rule

    def resolve(
        self,
        full_method_name: str,
        http_method: str | None = None,
        template: str | None = None,
        method_descriptor: MethodDescriptor | None = None,
    ) -> EffectivePolicy:
        """`full_method_name` is `pkg.Service/Method` (a leading '/' is accepted). Proto options are read
        from `method_descriptor` when given, else through `proto_options_lookup`. Results are memoized."""
        memo_key = (full_method_name, http_method, template, method_descriptor)
        found = self._resolved.get(memo_key)
        if found is not None:
            self._resolved.move_to_end(memo_key)
            return found
        method = full_method_name.lstrip("/")
        key, rule = self.config_rule(method, http_method, template)
        policy = EffectivePolicy.from_fields(rule, f"config:{key}")
        if method_descriptor is not None:
            proto = proto_policy(method_descriptor)
        else:
            proto = self._lookup(method) if self._lookup is not None else None
        if proto is not None:
            policy = self._combine(method, policy, rule, proto)
        self._resolved[memo_key] = policy
        while len(self._resolved) > _MEMO_MAX:
            self._resolved.popitem(last=False)
        return policy

    def _combine(self, method: str, policy: EffectivePolicy, rule: PolicyFields, proto: ProtoPolicy) -> EffectivePolicy:
        mode = policy.auth
        if proto.scopes_all_of or proto.scopes_any_of:
            mode = "required" if _STRENGTH[mode] < _STRENGTH["required"] else mode
        if proto.mode is not None and proto.mode != mode:
            if _STRENGTH[proto.mode] > _STRENGTH[mode] or rule.allow_proto_none:
                mode = proto.mode
            elif method not in self._warned:
                self._warned.add(method)
                log.warning(
                    "proto option asks auth %r for %s; ignored: the gateway policy (%s) does not allow_proto_none",
                    proto.mode,
                    method,
                    policy.source,
                )
        return EffectivePolicy(
            auth=mode,
            scopes_all_of=policy.scopes_all_of | proto.scopes_all_of,
            scopes_any_of=policy.scopes_any_of + tuple(g for g in proto.scopes_any_of if g),
            issuers=policy.issuers,
            forward_token=policy.forward_token,
            source=f"{policy.source}+proto",
        )
