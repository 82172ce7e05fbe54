"""A real gRPC backend that answers with what it received, for any descriptor set.

Transcoding-compatibility tests need to see the exact request message the
gateway built from a path, query and body, for many message shapes. Writing a
servicer per shape would drown the tables, so this backend serves any services
of a descriptor set (with server reflection from the same descriptors, so the
gateway discovers them as it would a real backend) and echoes bytes:

* unary: the reply is the request's bytes (declare methods whose reply type is
  the request type; tests decode the reply JSON);
* client streaming: the reply is the concatenation of every request's bytes,
  which protobuf parses as the messages merged in order (repeated fields
  appended, later singular fields winning) -- enough to count and inspect them;
* server streaming: the request is echoed `x-echo-repeat` times (default 1);
* bidi: each request is echoed back as it arrives.

Behaviour per call is asked for with request metadata, so one backend serves a
whole table:

* `x-echo-fail-after: N` ends the call with `x-echo-code` (default INTERNAL,
  a `grpc.StatusCode` name) after N replies (0: before any);
* `x-echo-header-<name>: v` / `x-echo-trailer-<name>: v` are returned as
  initial / trailing metadata `<name>: v`;
* `x-echo-delay-ms: N` sleeps before each reply.

A call the client cancels (or whose client went away) is marked `cancelled`.

A gateway passes these only when told to: put `ECHO_CONTROLS` (plus any
`x-echo-header-<name>` you use) in the test config's `forward_headers`.
Every call's method and metadata are recorded (`EchoBackend.calls`).
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection

from tests.support.backends import LoopThread

__all__ = ["ECHO_CONTROLS", "EchoBackend", "EchoCall", "echo_backend_running"]

ECHO_CONTROLS = ["x-echo-repeat", "x-echo-fail-after", "x-echo-code", "x-echo-delay-ms"]


@dataclass
class EchoCall:
    method: str  # "/package.Service/Method"
    metadata: tuple[tuple[str, str | bytes], ...]
    requests: list[bytes] = field(default_factory=list)
    replies: int = 0  # stream replies handed to gRPC (a reply waits there while flow control holds it)
    cancelled: bool = False  # the client cancelled the call while the backend was still in it
    ended: bool = False  # the RPC is over, whichever way it ended

    def header(self, key: str) -> str | bytes | None:
        values = [v for k, v in self.metadata if k == key.lower()]
        return values[0] if values else None


class EchoBackend:
    """The echo server of one descriptor set, on its own loop thread."""

    def __init__(self, descriptor_set: Path | bytes, services: list[str] | None = None) -> None:
        raw = descriptor_set if isinstance(descriptor_set, bytes) else Path(descriptor_set).read_bytes()
        files = descriptor_pb2.FileDescriptorSet.FromString(raw)
        self.pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            self.pool.Add(proto)
        if services is None:
            services = [f"{p.package}.{s.name}" if p.package else s.name for p in files.file for s in p.service]
        self.services = services
        self.calls: list[EchoCall] = []
        self._lock = threading.Lock()
        self._loop = LoopThread("echo-backend")
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def calls_to(self, method_suffix: str) -> list[EchoCall]:
        with self._lock:
            return [c for c in self.calls if c.method.endswith(method_suffix)]

    def last(self) -> EchoCall:
        with self._lock:
            return self.calls[-1]

    def start(self) -> "EchoBackend":
        self._loop.run(self._start())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._loop.run(self._server.stop(None))
        self._loop.close()

    async def _start(self) -> None:
        server = grpc.aio.server()
        for name in self.services:
            service = self.pool.FindServiceByName(name)
            handlers = {m.name: self._handler(m) for m in service.methods}
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        # v1alpha from grpcio-reflection, v1 routed to the same kind of servicer (wire-identical)
        reflection.enable_server_reflection([*self.services, reflection.SERVICE_NAME], server, pool=self.pool)
        _add_reflection_v1_with_pool(server, [*self.services, reflection.SERVICE_NAME], self.pool)
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server

    def _record(self, method: str, context: grpc.aio.ServicerContext) -> EchoCall:
        call = EchoCall(method, tuple((k, v) for k, v in context.invocation_metadata()))
        context.add_done_callback(lambda _: setattr(call, "ended", True))

        with self._lock:
            self.calls.append(call)
        return call

    def _handler(self, method: Any) -> grpc.RpcMethodHandler:
        path = f"/{method.containing_service.full_name}/{method.name}"
        identity = {"request_deserializer": None, "response_serializer": None}
        if not method.client_streaming and not method.server_streaming:

            async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                call = self._record(path, context)
                call.requests.append(request)
                plan = _Plan(context)
                await plan.start(context)
                await plan.before_reply(context, 0)
                plan.finish(context)
                return request

            return grpc.unary_unary_rpc_method_handler(unary, **identity)
        if method.client_streaming and not method.server_streaming:

            async def client_stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
                call = self._record(path, context)
                plan = _Plan(context)
                try:
                    async for request in requests:
                        call.requests.append(request)
                    await plan.start(context)
                    await plan.before_reply(context, 0)  # a cancel lands here (its request stream ends first)
                except asyncio.CancelledError:
                    call.cancelled = True
                    raise
                plan.finish(context)
                return b"".join(call.requests)

            return grpc.stream_unary_rpc_method_handler(client_stream, **identity)
        if not method.client_streaming:

            async def server_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
                call = self._record(path, context)
                call.requests.append(request)
                plan = _Plan(context)
                try:
                    await plan.start(context)
                    for sent in range(plan.repeat):
                        await plan.before_reply(context, sent)
                        call.replies += 1
                        yield request
                    await plan.before_reply(context, plan.repeat)
                except asyncio.CancelledError:
                    call.cancelled = True
                    raise
                plan.finish(context)

            return grpc.unary_stream_rpc_method_handler(server_stream, **identity)

        async def bidi(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            call = self._record(path, context)
            plan = _Plan(context)
            await plan.start(context)
            sent = 0
            try:
                async for request in requests:
                    call.requests.append(request)
                    await plan.before_reply(context, sent)
                    call.replies += 1
                    yield request
                    sent += 1
                await plan.before_reply(context, sent)
            except asyncio.CancelledError:
                call.cancelled = True
                raise
            plan.finish(context)

        return grpc.stream_stream_rpc_method_handler(bidi, **identity)


class _Plan:
    """What the caller's `x-echo-*` metadata asks of this call."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        pairs = list(context.invocation_metadata())
        meta = {k: v for k, v in pairs if isinstance(v, str)}
        self.repeat = int(meta.get("x-echo-repeat", "1"))
        fail = meta.get("x-echo-fail-after")
        self.fail_after = int(fail) if fail is not None else None
        self.code = grpc.StatusCode[meta.get("x-echo-code", "INTERNAL")]
        self.delay = int(meta.get("x-echo-delay-ms", "0")) / 1000
        # Text and binary (`-bin`, bytes) values alike.
        self.headers = [(k.removeprefix("x-echo-header-"), v) for k, v in pairs if k.startswith("x-echo-header-")]
        self.trailers = [(k.removeprefix("x-echo-trailer-"), v) for k, v in pairs if k.startswith("x-echo-trailer-")]

    async def start(self, context: grpc.aio.ServicerContext) -> None:
        if self.headers:
            await context.send_initial_metadata(self.headers)

    async def before_reply(self, context: grpc.aio.ServicerContext, sent: int) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_after is not None and sent >= self.fail_after:
            if self.trailers:
                context.set_trailing_metadata(self.trailers)
            await context.abort(self.code, f"echo failed after {sent} replies as asked")

    def finish(self, context: grpc.aio.ServicerContext) -> None:
        if self.trailers:
            context.set_trailing_metadata(self.trailers)


def _add_reflection_v1_with_pool(server: grpc.aio.Server, service_names: list[str], pool: Any) -> None:
    """`grpc.reflection.v1` served by grpcio-reflection's v1alpha servicer over our pool."""
    from grpc_reflection.v1alpha import reflection_pb2

    servicer = reflection.aio.ReflectionServicer(service_names, pool=pool)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}),)
    )


@contextlib.contextmanager
def echo_backend_running(descriptor_set: Path | bytes, services: list[str] | None = None) -> Iterator[EchoBackend]:
    backend = EchoBackend(descriptor_set, services).start()
    try:
        yield backend
    finally:
        backend.stop()
