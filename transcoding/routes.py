"""The route table: every HTTP binding of every method of every backend.

A table is built whole from a set of loaded descriptors and never mutated; a
reload builds a new one and the caller swaps the reference, so a request in
flight finishes on the table it started with. Everything a request needs per
route (codecs, bound gRPC callable) is built here, once, not per request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from . import errors
from .codec import RequestCodec, ResponseCodec
from .descriptors import LoadedDescriptors
from .httprule import HttpBinding, RuleError, bindings_for
from .invoker import MethodInvoker, SyncChannelSource
from .matcher import Binding, MalformedEscape, MethodNotAllowed, NoRoute, PathEncodingError, PathMatcher, RouteConflict
from .options import PathControlChars, PathUnescape, TranscodingOptions

DEFAULT_OPTIONS = TranscodingOptions()


# Paths routed literally could still mean another resource to whoever normalises them
# (RFC 3986 dot segments, in any spelling): refused before the route lookup under every
# profile. Both anchors pass '.' and '..' through as data (neither Envoy's transcoder with
# its default normalize_path: false nor grpc-gateway's ServeMux cleans a path); edge keeps
# the refusal as a documented security choice: a proxy or WAF in front that normalises
# would see another path than the one routed, and a backend that builds a file or URL
# from the value would be handed a traversal. Encoded control characters (a backend may
# cut at NUL or echo CR LF into a header) are refused unless `path_control_chars: allow`
# (both anchors pass them into the field).
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2[eE]){1,2}(?=/|:|$)")
# Under `path_unescape: legacy` the whole path is decoded before routing, so '%2F' is a
# separator and '%3A' may start a verb: a dot segment may hide behind them too.
_DOT_SEGMENT_DECODED = re.compile(r"(?:^|/|%2[fF])(?:\.|%2[eE]){1,2}(?=/|%2[fF]|:|%3[aA]|$)")
_CONTROL = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")


def check_path(raw_path: str, options: TranscodingOptions = DEFAULT_OPTIONS) -> None:
    """BadRequest for a request path that holds a '.' or '..' segment, or an encoded
    control character where the options refuse them."""
    if "%" in raw_path and options.path_control_chars is PathControlChars.REJECT and _CONTROL.search(raw_path):
        raise errors.BadRequest(f"request path {raw_path!r} holds an encoded control character (%00-%1F, %7F)")
    if "." in raw_path or "%" in raw_path:
        dots = _DOT_SEGMENT_DECODED if options.path_unescape is PathUnescape.LEGACY else _DOT_SEGMENT
        if dots.search(raw_path):
            raise errors.BadRequest(f"request path {raw_path!r} holds a '.' or '..' segment; send it normalised")


@dataclass
class Route:
    backend: str
    method: MethodDescriptor
    binding: HttpBinding
    request_class: type[Message]
    request_codec: RequestCodec
    response_codec: ResponseCodec
    invoker: MethodInvoker
    options: TranscodingOptions  # its backend's: the codecs, the pipeline and OpenAPI read the same

    @property
    def full_method(self) -> str:
        """`package.Service/Method`, the key policies are written against."""
        return f"{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def template(self) -> str:
        return self.binding.template.text

    @property
    def client_streaming(self) -> bool:
        return self.method.client_streaming

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming


@dataclass
class BackendSource:
    """What the table needs of one backend: its name, descriptors, channel and options."""

    name: str
    descriptors: LoadedDescriptors
    channel: grpc.aio.Channel
    options: TranscodingOptions = DEFAULT_OPTIONS
    #: The backend's synchronous channel, for calls whose requests stream (see transcoding/invoker.py).
    sync_channel: SyncChannelSource | None = None


@dataclass(frozen=True)
class RouteProblem:
    backend: str
    method: str
    message: str

    def __str__(self) -> str:
        return f"backend {self.backend}: {self.method}: {self.message}"


@dataclass
class RouteTable:
    matcher: PathMatcher[Route]
    routes: list[Route] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # service full name -> backend
    #: The gateway-wide options: what applies before a route is known (path checks, verbs).
    options: TranscodingOptions = DEFAULT_OPTIONS

    def lookup(self, http_method: str, raw_path: str) -> tuple[Route, list[Binding]]:
        check_path(raw_path, self.options)
        try:
            match = self.matcher.lookup(http_method, raw_path)
        except MethodNotAllowed as exc:
            raise errors.MethodNotAllowed(
                f"{http_method} is not allowed on {raw_path}; allowed: {', '.join(exc.allowed)}", allowed=exc.allowed
            ) from None
        except NoRoute:
            raise errors.RouteNotFound(f"no route for {http_method} {raw_path}") from None
        except PathEncodingError as exc:
            raise errors.BadRequest(str(exc), field=exc.field_path) from None
        except MalformedEscape as exc:
            raise errors.BadRequest(str(exc)) from None
        return match.value, match.bindings

    @classmethod
    def build(
        cls, backends: Sequence[BackendSource], options: TranscodingOptions = DEFAULT_OPTIONS
    ) -> tuple["RouteTable", list[RouteProblem]]:
        """A table of every usable route, and every problem found on the way.

        A method whose rule is invalid, or a binding that collides with an
        earlier one, is left out and reported; the rest of the backend still
        serves.
        """
        table = cls(PathMatcher(options), options=options)
        problems: list[RouteProblem] = []
        for backend in backends:
            pool = backend.descriptors.pool
            for service_name in backend.descriptors.services:
                owner = table.services.setdefault(service_name, backend.name)
                if owner != backend.name:
                    problems.append(
                        RouteProblem(backend.name, service_name, f"service is also served by backend {owner}; ignored here")
                    )
                    continue
                service = pool.FindServiceByName(service_name)
                for method in service.methods:
                    problems.extend(table._add_method(backend, method))
        return table, problems

    def _add_method(self, backend: BackendSource, method: MethodDescriptor) -> list[RouteProblem]:
        problems: list[RouteProblem] = []
        try:
            bindings = bindings_for(method)
        except RuleError as exc:
            return [RouteProblem(backend.name, method.full_name, exc.message)]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        invoker = MethodInvoker(
            backend.channel,
            f"/{method.containing_service.full_name}/{method.name}",
            response_class,
            method.client_streaming,
            method.server_streaming,
            backend.descriptors.pool,
            sync_channel=backend.sync_channel,
        )
        for binding in bindings:
            try:
                route = Route(
                    backend=backend.name,
                    method=method,
                    binding=binding,
                    request_class=request_class,
                    request_codec=RequestCodec(
                        method.input_type, binding.body, binding.template.field_paths(), options=backend.options,
                        http_method=binding.http_method,
                    ),
                    response_codec=ResponseCodec(method.output_type, binding.response_body, options=backend.options),
                    invoker=invoker,
                    options=backend.options,
                )
                self.matcher.add(binding.http_method, binding.template, route)
            except RouteConflict as exc:
                other: Route = exc.existing
                problems.append(
                    RouteProblem(
                        backend.name,
                        method.full_name,
                        f"{binding.http_method} {binding.template.text} cannot be told apart from "
                        f"{other.binding.http_method} {other.template} of {other.method.full_name}; ignored",
                    )
                )
                continue
            except (ValueError, TypeError, KeyError) as exc:
                # e.g. a path variable, body or response_body naming no field
                problems.append(RouteProblem(backend.name, method.full_name, f"{binding.http_method} {binding.template.text}: {exc}"))
                continue
            self.routes.append(route)
        return problems
