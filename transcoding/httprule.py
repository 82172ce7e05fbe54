"""The `google.api.http` option of a method, as parsed HTTP bindings.

One method may have several bindings (`additional_bindings`); a method with no
annotation gets the default `POST /<package.Service>/<Method>` binding with the
whole JSON body as the request, as grpc-gateway and Envoy offer.
"""
from __future__ import annotations

from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor

from .template import PathTemplate, TemplateError, parse_template

_KINDS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class HttpBinding:
    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    annotated: bool  # False for the default POST /<Service>/<Method> route


class RuleError(ValueError):
    """A method's HTTP rule cannot be used; names the method and, for templates, the position."""

    def __init__(self, method: str, message: str, position: int | None = None) -> None:
        self.method = method
        self.message = message
        self.position = position
        super().__init__(f"{method}: {message}")


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        # Options parsed by a pool that did not know the extension keep it as
        # unknown fields; re-parsing against the generated MethodOptions (which
        # has google.api.http registered) recovers it.
        reparsed = descriptor_pb2.MethodOptions.FromString(options.SerializeToString())
        if not reparsed.HasExtension(annotations_pb2.http):
            return None
        options = reparsed
    return options.Extensions[annotations_pb2.http]


def default_binding(method: MethodDescriptor) -> HttpBinding:
    path = f"/{method.containing_service.full_name}/{method.name}"
    return HttpBinding("POST", parse_template(path), body="*", response_body="", annotated=False)


def bindings_for(method: MethodDescriptor) -> list[HttpBinding]:
    """Every binding of a method: the rule itself, then its additional bindings."""
    rule = http_rule(method)
    if rule is None:
        return [default_binding(method)]
    bindings = [_binding(method, rule)]
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise RuleError(method.full_name, "additional_bindings may not be nested")
        bindings.append(_binding(method, extra))
    return bindings


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> HttpBinding:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RuleError(method.full_name, "google.api.http rule has no pattern (get, post, ...)")
    if kind == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
        if not http_method:
            raise RuleError(method.full_name, "custom rule has an empty kind")
    else:
        http_method, path = kind.upper(), getattr(rule, kind)
    try:
        template = parse_template(path)
    except TemplateError as exc:
        raise RuleError(method.full_name, str(exc), exc.position) from None
    return HttpBinding(http_method, template, rule.body, rule.response_body, annotated=True)
