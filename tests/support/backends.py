"""Real demo gRPC backends for tests, each on an event-loop thread of its own.

Gateway tests run uvicorn on another loop thread and drive it with blocking
HTTP calls from the test thread, so the backend cannot share the test's loop:
it gets a `LoopThread`. The recorder is thread-safe to read from the test; to
touch servicer state (e.g. `backend.server.library.books`), run a coroutine on
the backend's loop with `backend.run(...)`.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection, reflection_pb2

from edgedemo.recording import CallRecorder
from edgedemo.serve import DemoServer, start_demo_servers

DEMO_DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "protos" / "edgedemo" / "descriptors.binpb"


class LoopThread:
    """An asyncio loop running forever on a daemon thread."""

    def __init__(self, name: str = "backend-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on this loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class RunningDemoBackend:
    """A started demo server. Unpacks as `port, recorder = backend`."""

    server: DemoServer
    loop_thread: LoopThread

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def recorder(self) -> CallRecorder:
        return self.server.recorder

    @property
    def target(self) -> str:
        return self.server.target

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return self.loop_thread.run(coro, timeout)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.port, self.recorder))


@contextlib.contextmanager
def demo_backend_running(**options: Any) -> Iterator[RunningDemoBackend]:
    """`start_demo_servers(**options)` on a fresh loop thread; stopped on exit."""
    loop_thread = LoopThread()
    try:
        server = loop_thread.run(start_demo_servers(**options))
        try:
            yield RunningDemoBackend(server, loop_thread)
        finally:
            loop_thread.run(server.stop(grace=None))
    finally:
        loop_thread.close()


def add_reflection_v1(server: grpc.aio.Server, service_names: list[str]) -> None:
    """Serve `grpc.reflection.v1` by routing it to grpcio-reflection's v1alpha servicer
    (the protocols are wire-identical; grpcio-reflection ships only v1alpha)."""
    servicer = reflection.aio.ReflectionServicer(service_names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}),)
    )


@pytest.fixture
def demo_backend() -> Iterator[RunningDemoBackend]:
    """Both demo services (fresh seeded data) with reflection and health, on an ephemeral port."""
    with demo_backend_running() as backend:
        yield backend


@pytest.fixture
def start_demo_backend() -> Iterator[Callable[..., RunningDemoBackend]]:
    """Start extra demo backends with options, e.g. `start_demo_backend(reflection=False)`."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(demo_backend_running(**options))


@pytest.fixture
def demo_descriptor_set() -> Path:
    """The committed descriptor set (with imports) of the demo protos."""
    return DEMO_DESCRIPTOR_SET
