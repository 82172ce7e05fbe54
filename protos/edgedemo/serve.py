"""Run both demo services on one grpc.aio server, with reflection and health.

`start_demo_servers()` is what tests and the demo use; `python -m edgedemo.serve
--port 50051` runs it until SIGINT/SIGTERM. Reflection (v1alpha, the only
version grpcio-reflection serves) lets the gateway discover the services;
grpc.health.v1 lets it probe the backend.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from edgedemo import library_pb2, library_pb2_grpc, users_pb2, users_pb2_grpc
from edgedemo.library_server import LibraryServicer
from edgedemo.recording import CallRecorder, RecordingInterceptor
from edgedemo.users_server import UsersServicer

LIBRARY_SERVICE = library_pb2.DESCRIPTOR.services_by_name["LibraryService"].full_name
USER_SERVICE = users_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
SERVICE_NAMES = (LIBRARY_SERVICE, USER_SERVICE)


@dataclass
class DemoServer:
    server: grpc.aio.Server
    host: str
    port: int
    recorder: CallRecorder
    library: LibraryServicer
    users: UsersServicer
    health: grpc_health.aio.HealthServicer | None

    @property
    def target(self) -> str:
        """What to hand grpc.aio.insecure_channel()."""
        return f"{self.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_demo_servers(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reflection: bool = True,
    health: bool = True,
    recorder: CallRecorder | None = None,
    seed: bool = True,
) -> DemoServer:
    """Start LibraryService and UserService on `host:port` (0 picks a free port)."""
    recorder = recorder or CallRecorder()
    server = grpc.aio.server(interceptors=[RecordingInterceptor(recorder)])
    library = LibraryServicer(seed=seed)
    users = UsersServicer(seed=seed)
    library_pb2_grpc.add_LibraryServiceServicer_to_server(library, server)
    users_pb2_grpc.add_UserServiceServicer_to_server(users, server)
    served = list(SERVICE_NAMES)
    health_servicer = None
    if health:
        health_servicer = grpc_health.aio.HealthServicer()
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        served.append(grpc_health.SERVICE_NAME)
    if reflection:
        grpc_reflection.enable_server_reflection([*served, grpc_reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    return DemoServer(server, host, bound, recorder, library, users, health_servicer)


async def _serve(host: str, port: int, *, reflection: bool, health: bool) -> None:
    demo = await start_demo_servers(host, port, reflection=reflection, health=health)
    print(f"edgedemo: {', '.join(SERVICE_NAMES)} on {demo.target}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await demo.stop(grace=2.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgedemo.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--no-reflection", action="store_true", help="do not serve server reflection")
    parser.add_argument("--no-health", action="store_true", help="do not serve grpc.health.v1")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, reflection=not args.no_reflection, health=not args.no_health))


if __name__ == "__main__":
    main()
