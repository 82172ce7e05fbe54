"""Running the gateway: the public listener, the admin listener, and signals.

uvicorn's own signal handling waits forever on SIGTERM and never flips
readiness, so the gateway handles signals itself: SIGHUP reloads descriptors,
SIGTERM/SIGINT drain (readiness fails at once, then the listeners stop and
in-flight requests get a bounded time to finish).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any, Iterator

import uvicorn

from .admin import build_admin_app
from .app import GatewayApp
from .backends import BackendRegistry
from .config import GatewayConfig
from .tls import CertificateReloader, apply_to_uvicorn, server_ssl_context

log = logging.getLogger("edge.server")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the gateway."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        return self.servers[0].sockets[0].getsockname()[1]


def _uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        loop="none",  # the caller's loop (uvloop when run from the CLI)
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


class GatewayServer:
    """The gateway's listeners and registry, started and stopped as one."""

    def __init__(self, config: GatewayConfig, host: str | None = None, port: int | None = None) -> None:
        self.config = config
        self.registry = BackendRegistry(config)
        self.app = GatewayApp(config, self.registry)
        public_config = _uvicorn_config(self.app, host or config.listen.host, config.listen.port if port is None else port)
        self.tls: CertificateReloader | None = None
        if config.listen.tls is not None:
            # New handshakes pick up rotated certificate files; open connections keep theirs.
            context, self.tls = server_ssl_context(config.listen.tls)
            apply_to_uvicorn(public_config, context, self.tls)
        self.public = _Server(public_config)
        self.admin: _Server | None = None
        if config.admin.enabled:
            self.admin = _Server(_uvicorn_config(build_admin_app(self.registry), config.admin.host, config.admin.port))
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._watcher: asyncio.Task | None = None

    @property
    def servers(self) -> list[_Server]:
        return [s for s in (self.public, self.admin) if s is not None]

    async def start(self) -> None:
        report = await self.registry.start()
        for name, message in report.failed.items():
            log.warning("backend %s is not serving yet (will retry): %s", name, message)
        if self.tls is not None:
            self._watcher = asyncio.create_task(self.tls.run(self._stopping), name="edge-cert-watch")
        for s in self.servers:
            self._tasks.append(asyncio.create_task(s.serve()))
        while not all(s.started for s in self.servers):
            if any(t.done() for t in self._tasks):
                await asyncio.gather(*self._tasks)  # surfaces a bind failure
                raise RuntimeError("a listener stopped during start-up")
            await asyncio.sleep(0.01)
        scheme = "https" if self.tls is not None else "http"
        log.info("gateway listening on %s://%s:%d", scheme, self.public.config.host, self.public.port)

    def reload(self) -> None:
        """SIGHUP: re-read descriptors and, when TLS is on, the certificate files."""
        self.registry.request_reload()
        if self.tls is not None:
            self.tls.reload()

    def begin_shutdown(self) -> None:
        log.info("stopping: readiness now fails; finishing in-flight requests")
        self.app.draining = True
        self._stopping.set()
        for s in self.servers:
            s.should_exit = True

    async def wait_closed(self) -> None:
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._stopping.set()
            if self._watcher is not None:
                await self._watcher
            await self.registry.close()

    async def stop(self) -> None:
        self.begin_shutdown()
        await self.wait_closed()


async def serve(config: GatewayConfig, host: str | None = None, port: int | None = None) -> None:
    server = GatewayServer(config, host, port)
    await server.start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.begin_shutdown)
    loop.add_signal_handler(signal.SIGINT, server.begin_shutdown)
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    await server.wait_closed()
