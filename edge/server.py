"""Running the gateway: the public listener, the admin listener, signals and workers.

uvicorn's own signal handling waits forever on SIGTERM and never flips
readiness, so the gateway handles signals itself:

* SIGHUP re-reads descriptors (and certificate files);
* SIGTERM fails `/readyz` at once, keeps serving for `lifecycle.pre_drain_delay`
  so load balancers stop sending, then stops accepting and gives in-flight
  requests (streams included) `lifecycle.drain_timeout` before cancelling them
  (which cancels their gRPC calls), then closes channels;
* SIGINT (Ctrl+C) does the same without the pre-drain delay.

`edge serve --workers N` runs N such processes on one port, bound by a small
supervisor, which forwards signals and replaces a worker that dies. Each worker
gets a listening socket of its own in one SO_REUSEPORT group, so the kernel
spreads connections evenly over them; on one shared socket the worker that
wakes first takes most of them (measured: 22-30 of 32 keep-alive connections
on one of two workers), and long-lived connections stay where they landed.
The supervisor holds every socket, so a dead worker's queued connections wait
for its replacement instead of being reset. (A group admits only sockets of the
same user, as with any SO_REUSEPORT listener.)

A worker whose supervisor dies without stopping it (SIGKILL, the OOM killer, a crash) stops
as on SIGTERM: readiness fails, the listener closes after `pre_drain_delay`, in-flight
requests get `drain_timeout`, then it exits and the port is free (see `_watch_supervisor`).
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from typing import Any, Iterator

import uvicorn

from .admin import SUPERVISOR_ENV, build_admin_app
from .app import GatewayApp
from .backends import BackendRegistry
from .config import GatewayConfig, Listen
from .connection_limits import ConnectionLimits, limit_connections
from .http2 import Http2Limits, with_http2
from .tls import CertificateReloader, apply_to_uvicorn, server_ssl_context
from .wire import CoalescingHttpToolsProtocol

log = logging.getLogger("edge.server")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the gateway, and does not poll.

    uvicorn's main loop wakes 10 times a second to see whether it should exit (and, every
    tenth time, to refresh the Date header): ~1-2 ms of CPU a second per listener, in every
    worker, busy or idle. Here it wakes once a second for the Date header, and at once when
    `should_exit` is set.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = asyncio.Event()
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._exit_requested.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit_requested.set()
        else:
            self._exit_requested.clear()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the Date header when counter % 10 == 0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), 1.0)
            should_exit = await self.on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        return self.servers[0].sockets[0].getsockname()[1]


def _uvicorn_config(app: Any, host: str, port: int, drain_timeout: float) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        loop="none",  # the caller's loop (uvloop when run from the CLI)
        http=CoalescingHttpToolsProtocol,  # httptools, one write per reply
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn would rewrite the client address from X-Forwarded-For of any loopback
        # peer; the gateway believes forwarding headers only from rate_limits.trusted_proxies.
        proxy_headers=False,
        timeout_graceful_shutdown=drain_timeout,
    )


def _limits(listen: Listen) -> ConnectionLimits:
    return ConnectionLimits(listen.max_header_bytes, listen.max_url_bytes, listen.header_timeout,
                            listen.body_timeout, listen.keep_alive_timeout)


def _websocket_settings(config: uvicorn.Config, gateway: GatewayConfig) -> None:
    """WebSocket over HTTP/1.1 by uvicorn's sans-I/O `websockets` protocol, which lets the app
    answer a refused handshake with an HTTP status and body. With no `websocket` section an
    upgrade is still parsed, and answered 404 (a clear refusal, not the 500 of an app that
    ignores the scope); the frame size is then the smallest, since no frame is ever read."""
    ws = gateway.websocket
    config.ws = "websockets-sansio"
    if ws is None:
        config.ws_max_size, config.ws_per_message_deflate = 128, False
        return
    config.ws_max_size = ws.max_message_bytes
    config.ws_per_message_deflate = ws.per_message_deflate
    config.ws_ping_interval = ws.ping_interval
    config.ws_ping_timeout = ws.ping_timeout


def _http2_limits(listen: Listen) -> Http2Limits:
    h2 = listen.http2
    return Http2Limits(
        max_header_bytes=listen.max_header_bytes, max_url_bytes=listen.max_url_bytes,
        header_timeout=listen.header_timeout, body_timeout=listen.body_timeout,
        keep_alive_timeout=listen.keep_alive_timeout, max_concurrent_streams=h2.max_concurrent_streams,
        stream_window=h2.stream_window, connection_window=h2.connection_window, max_frame_size=h2.max_frame_size,
        max_resets=h2.max_resets, max_control_frames=h2.max_control_frames, ping_interval=h2.ping_interval,
        ping_timeout=h2.ping_timeout, stalled_stream_timeout=h2.stalled_stream_timeout,
    )


class GatewayServer:
    """The gateway's listeners and registry, started and stopped as one."""

    def __init__(
        self,
        config: GatewayConfig,
        host: str | None = None,
        port: int | None = None,
        *,
        sockets: list[socket.socket] | None = None,
        admin: bool = True,
    ) -> None:
        self.config = config
        self.registry = BackendRegistry(config)
        self.app = GatewayApp(config, self.registry)
        drain = config.lifecycle.drain_timeout
        public_config = _uvicorn_config(
            self.app, host or config.listen.host, config.listen.port if port is None else port, drain
        )
        limit_connections(public_config, _limits(config.listen))
        _websocket_settings(public_config, config)
        self.tls: CertificateReloader | None = None
        if config.listen.tls is not None:
            # New handshakes pick up rotated certificate files; open connections keep theirs.
            context, self.tls = server_ssl_context(config.listen.tls)
            apply_to_uvicorn(public_config, context, self.tls)
        if config.listen.http2.enabled:  # on the same socket: h2 by ALPN, h2c by its preface (edge/http2/)
            public_config.http = with_http2(public_config.http, _http2_limits(config.listen), h2c=config.listen.http2.h2c)
        self.public = _Server(public_config)
        self._sockets = sockets
        self.admin: _Server | None = None
        if config.admin.enabled and admin:
            admin_app = build_admin_app(self.registry, self.app)  # the app: its core holds the API key store
            admin_config = _uvicorn_config(admin_app, config.admin.host, config.admin.port, drain)
            limit_connections(admin_config, _limits(config.listen))
            self.admin = _Server(admin_config)
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._watcher: asyncio.Task | None = None
        self._shutdown: asyncio.Task | None = None

    @property
    def servers(self) -> list[_Server]:
        return [s for s in (self.public, self.admin) if s is not None]

    async def start(self) -> None:
        report = await self.registry.start()
        for name, message in report.failed.items():
            log.warning("backend %s is not serving yet (will retry): %s", name, message)
        await self.app.start()
        if self.tls is not None:
            self._watcher = asyncio.create_task(self.tls.run(self._stopping), name="edge-cert-watch")
        self._tasks.append(asyncio.create_task(self.public.serve(sockets=self._sockets)))
        if self.admin is not None:
            self._tasks.append(asyncio.create_task(self.admin.serve()))
        while not all(s.started for s in self.servers):
            if any(t.done() for t in self._tasks):
                await asyncio.gather(*self._tasks)  # surfaces a bind failure
                raise RuntimeError("a listener stopped during start-up")
            await asyncio.sleep(0.01)
        if self._shutdown is not None:  # a signal during start-up: the listeners are already closing
            return
        scheme = "https" if self.tls is not None else "http"
        log.info("gateway listening on %s://%s:%d", scheme, self.public.config.host, self.public.port)

    def reload(self) -> None:
        """SIGHUP: re-read descriptors and, when TLS is on, the certificate files."""
        self.registry.request_reload()
        if self.tls is not None:
            self.tls.reload()

    def begin_shutdown(self, pre_drain_delay: float | None = None) -> None:
        """Fail readiness now; stop the listeners after the pre-drain delay."""
        if self._shutdown is not None:  # a second signal skips the remaining delay
            for s in self.servers:
                s.should_exit = True
            return
        delay = self.config.lifecycle.pre_drain_delay if pre_drain_delay is None else pre_drain_delay
        log.info("stopping: readiness fails now; listeners close in %.1fs; in-flight requests get %.1fs",
                 delay, self.config.lifecycle.drain_timeout)
        self.app.draining = True
        self._shutdown = asyncio.ensure_future(self._close_after(delay))

    async def _close_after(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
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
            await self.app.close()
            await self.registry.close()

    async def stop(self) -> None:
        self.begin_shutdown(pre_drain_delay=0)
        await self.wait_closed()


async def serve(
    config: GatewayConfig,
    host: str | None = None,
    port: int | None = None,
    *,
    sockets: list[socket.socket] | None = None,
    admin: bool = True,
    early_signals: list[int] | None = None,
    supervisor: multiprocessing.connection.Connection | None = None,
) -> None:
    server = GatewayServer(config, host, port, sockets=sockets, admin=admin)
    # The handlers go in before the listeners open: a SIGTERM sent as soon as the port
    # answers (an orchestrator that is quick to scale down) must drain, not kill the
    # process with Python's default action while start-up is still finishing.
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.begin_shutdown)
    loop.add_signal_handler(signal.SIGINT, lambda: server.begin_shutdown(pre_drain_delay=0))
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    if supervisor is not None:
        _watch_supervisor(loop, supervisor, server)
    for signum in early_signals or ():
        os.kill(os.getpid(), signum)  # delivered again, now to the loop's handlers
    await server.start()
    # Everything built at start-up (descriptor pools, route table, config, modules)
    # lives as long as the process: move it out of the cyclic collector's sight,
    # so a full collection walks only request garbage instead of setting the p99.
    gc.collect()
    gc.freeze()
    await server.wait_closed()


# ---- several worker processes on one port ------------------------------------------------


def _watch_supervisor(loop: asyncio.AbstractEventLoop, supervisor: multiprocessing.connection.Connection,
                      server: GatewayServer) -> None:
    """Stop `server` as on SIGTERM once the supervisor is gone, however it went.

    `supervisor` is the read end of a pipe whose only write end the supervisor holds and never
    writes to. When the supervisor process ends, by any means including SIGKILL, the kernel
    closes that end and the read end becomes readable (EOF) for good: a supervisor that died
    before this worker got here is seen at once, so there is no start-up race to close. It
    costs nothing while the supervisor lives (one fd in the loop's selector) and works on any
    POSIX system. (The write end must stay out of the workers: `spawn` passes a child only the
    descriptors it is given, and an inherited copy would keep the pipe open forever.)

    Linux's parent-death signal (prctl PR_SET_PDEATHSIG) is not used: it fires when the
    *thread* that started the worker ends, not the process, so it would stop the workers of
    a living supervisor that ever started one from a short-lived thread; it needs an
    os.getppid() check to catch a parent that died before the prctl; and it is Linux only.

    The worker drains like on SIGTERM (readiness fails, `pre_drain_delay`, then in-flight
    requests get `drain_timeout`) rather than exiting at once: the supervisor's death says
    nothing about the requests this worker is serving, and they can still be answered.
    If a SIGTERM drain is already under way (a supervisor killed while it waited for its
    workers), this skips the rest of the pre-drain delay, as a second signal does.
    """
    fd = supervisor.fileno()

    def gone() -> None:
        loop.remove_reader(fd)
        log.warning("the supervisor (pid %s) is gone: stopping as on SIGTERM", os.environ.get(SUPERVISOR_ENV))
        server.begin_shutdown()

    loop.add_reader(fd, gone)


def _worker_main(config: GatewayConfig, sock: socket.socket, index: int, log_level: str,
                 supervisor: multiprocessing.connection.Connection) -> None:
    logging.basicConfig(level=log_level.upper(), format=f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    # A signal forwarded while this worker starts is kept and acted on once its loop runs.
    early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda signum, _frame: early.append(signum))
    # Only worker 0 runs the admin listener; SIGHUP reaches every worker via the supervisor.
    asyncio.run(serve(config, sockets=[sock], admin=index == 0, early_signals=early, supervisor=supervisor))


def _listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port: a SO_REUSEPORT group where the platform has it,
    else one socket shared by every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = count > 1 and hasattr(socket, "SO_REUSEPORT")
    socks: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the port the first one got
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks * count if len(socks) == 1 else socks


def run_workers(config: GatewayConfig, workers: int, host: str | None, port: int | None, log_level: str) -> int:
    """Bind the public port once (a socket per worker) and run `workers` gateway processes on it."""
    host = host or config.listen.host
    port = config.listen.port if port is None else port
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    ctx = multiprocessing.get_context("spawn")
    procs: dict[int, multiprocessing.process.BaseProcess] = {}
    # Every worker watches the read end; the write end lives only here, so whatever ends this
    # process closes it and the workers stop by themselves (_watch_supervisor).
    supervisor_alive, alive_write_end = ctx.Pipe(duplex=False)

    def start(index: int) -> None:
        proc = ctx.Process(target=_worker_main, args=(config, socks[index], index, log_level, supervisor_alive),
                           name=f"edge-worker-{index}")
        proc.start()
        procs[index] = proc

    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for proc in procs.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    # Before the port accepts and any worker exists: a supervisor that a SIGTERM killed
    # while they start would leave its workers serving on it with nobody to stop them.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    socks = _listening_sockets(host, port, workers)
    # Metrics from all workers are aggregated through files in this directory (made once the
    # port is bound, so a port in use leaves no directory behind).
    metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="edge-metrics-")
    for i in range(workers):
        start(i)
    if stopping:  # a signal while they started: the ones it missed are told now
        forward(signal.SIGTERM, None)
    log.info("supervisor %d: %d workers on %s:%d", os.getpid(), workers, host, socks[0].getsockname()[1])
    last_start: dict[int, float] = {}
    while True:
        for index, proc in list(procs.items()):
            if proc.is_alive():
                continue
            _mark_dead(proc.pid)
            if not stopping:
                log.error("worker %d (pid %s) exited with %s; starting a new one", index, proc.pid, proc.exitcode)
                # A worker that dies at once (a bad config, a port) is not restarted in a tight loop.
                time.sleep(max(0.0, last_start.get(index, 0.0) + 1.0 - time.monotonic()))
                if stopping:
                    continue
                last_start[index] = time.monotonic()
                start(index)
        if stopping and not any(p.is_alive() for p in procs.values()):
            break
        # Sleep until a worker exits (its sentinel) or a signal arrives: polling at 5 Hz cost the
        # supervisor ~1.7 ms of CPU a second, which a busy 2-core machine pays in the workers' time.
        multiprocessing.connection.wait([p.sentinel for p in procs.values()], timeout=5.0)
    for sock in set(socks):
        sock.close()
    supervisor_alive.close()
    alive_write_end.close()
    if metrics_dir is not None:  # ours: the workers are gone, so are their numbers
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _mark_dead(pid: int | None) -> None:
    if pid is None or "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    with contextlib.suppress(ImportError):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
