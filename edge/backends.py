"""Backends: their channels, their descriptors, and the live route table.

Descriptors are re-read on a schedule, on SIGHUP and on the admin reload
endpoint. Each backend loads on its own: one that fails keeps its last good
descriptors (or, if it never loaded, is retried with backoff) while the others
serve. The route table is rebuilt only when some backend's descriptors
actually changed, then swapped in one assignment; requests hold a reference to
the table they started with.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from transcoding.descriptors import DescriptorLoadError, LoadedDescriptors, load_from_file, load_from_reflection
from transcoding.invoker import SyncChannel, make_channel
from transcoding.matcher import PathMatcher
from transcoding.routes import BackendSource, RouteProblem, RouteTable

from .config import Backend, GatewayConfig
from .observability.metrics import get_metrics

log = logging.getLogger("edge.backends")

HEALTH_TIMEOUT = 1.0


@dataclass
class BackendState:
    config: Backend
    channel: grpc.aio.Channel
    sync_channel: SyncChannel  # for calls whose requests stream (transcoding/invoker.py says why)
    descriptors: LoadedDescriptors | None = None
    fingerprint: str | None = None
    last_error: str | None = None
    loaded_at: float | None = None
    failures: int = 0
    health: str = "UNKNOWN"  # grpc.health.v1: SERVING, NOT_SERVING, UNIMPLEMENTED (not served), UNREACHABLE


@dataclass
class ReloadReport:
    loaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    problems: list[RouteProblem] = field(default_factory=list)
    rebuilt: bool = False

    def as_dict(self) -> dict:
        return {
            "loaded": self.loaded,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "problems": [str(p) for p in self.problems],
            "rebuilt": self.rebuilt,
        }


def channel_credentials(backend: Backend) -> grpc.ChannelCredentials | None:
    if backend.tls is None:
        return None
    tls = backend.tls
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca_file.read_bytes() if tls.ca_file else None,
        private_key=tls.key_file.read_bytes() if tls.key_file else None,
        certificate_chain=tls.cert_file.read_bytes() if tls.cert_file else None,
    )


def channel_options(backend: Backend) -> list[tuple[str, object]]:
    if backend.tls is not None and backend.tls.server_name:
        return [("grpc.ssl_target_name_override", backend.tls.server_name)]
    return []


async def load_descriptors(backend: Backend, channel: grpc.aio.Channel) -> LoadedDescriptors:
    """The backend's descriptors, from reflection or from its descriptor set file."""
    if backend.descriptors == "reflection":
        return await load_from_reflection(channel, timeout=backend.timeout, services=backend.services)
    # File parsing is quick, but keep the event loop free for large sets.
    return await asyncio.to_thread(load_from_file, backend.descriptors, backend.services)


def _fingerprint(descriptors: LoadedDescriptors) -> str:
    digest = hashlib.sha256()
    for f in sorted(descriptors.files, key=lambda f: f.name):
        digest.update(f.SerializeToString(deterministic=True))
    digest.update("\0".join(sorted(descriptors.services)).encode())
    return digest.hexdigest()


class BackendRegistry:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        # transcoding/options.py's table as the config sets it, gateway-wide and per backend: built once.
        self.options = config.transcoding_options()
        self.backend_options = {b.name: config.transcoding_options(b.name) for b in config.backends}
        self.backends: dict[str, BackendState] = {}
        self.table: RouteTable = RouteTable(PathMatcher())
        self.problems: list[RouteProblem] = []
        self.generation = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._health_task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        #: Called with each new route table, before it is swapped in.
        self.on_rebuild: list[Callable[[RouteTable], None]] = []

    async def start(self, *, watch: bool = True) -> ReloadReport:
        for b in self.config.backends:
            credentials, options = channel_credentials(b), channel_options(b)
            channel = make_channel(b.target, credentials, options)
            self.backends[b.name] = BackendState(b, channel, SyncChannel(b.target, credentials, options))
        report = await self.reload()
        if watch:
            self._task = asyncio.create_task(self._watch(), name="edge-descriptor-reload")
            self._health_task = asyncio.create_task(self._watch_health(), name="edge-backend-health")
        return report

    async def close(self) -> None:
        for task in (self._task, self._health_task):
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await asyncio.gather(*(s.channel.close() for s in self.backends.values()), return_exceptions=True)
        for state in self.backends.values():
            state.sync_channel.close()

    def ready(self) -> bool:
        return all(s.descriptors is not None for s in self.backends.values() if s.config.required)

    def status(self) -> dict[str, dict]:
        return {
            name: {
                "target": s.config.target,
                "required": s.config.required,
                "health": s.health,
                "loaded": s.descriptors is not None,
                "services": s.descriptors.services if s.descriptors else [],
                "last_error": s.last_error,
                "loaded_at": s.loaded_at,
            }
            for name, s in self.backends.items()
        }

    def request_reload(self) -> None:
        """Ask the watcher to reload now (safe from a signal handler)."""
        self._wake.set()

    async def reload(self) -> ReloadReport:
        async with self._lock:
            report = ReloadReport()
            states = list(self.backends.values())
            results = await asyncio.gather(*(self._load_one(s) for s in states), return_exceptions=True)
            changed = False
            metrics = get_metrics()
            for state, result in zip(states, results):
                name = state.config.name
                metrics.descriptor_reload(name, not isinstance(result, BaseException))
                if isinstance(result, BaseException):
                    message = str(result) if isinstance(result, DescriptorLoadError) else f"unexpected error: {result!r}"
                    state.last_error = message
                    state.failures += 1
                    report.failed[name] = message
                    kept = "keeping its last good routes" if state.descriptors else "no routes yet"
                    log.warning("backend %s failed to load descriptors (%s): %s", name, kept, message)
                    continue
                state.last_error, state.failures = None, 0
                fingerprint = _fingerprint(result)
                if fingerprint == state.fingerprint:
                    report.unchanged.append(name)
                    continue
                state.descriptors, state.fingerprint, state.loaded_at = result, fingerprint, time.time()
                report.loaded.append(name)
                changed = True
                log.info("backend %s: loaded %d services", name, len(result.services))
            if changed or self.generation == 0:
                self._rebuild()
                report.rebuilt = True
            report.problems = list(self.problems)
            return report

    async def _load_one(self, state: BackendState) -> LoadedDescriptors:
        return await load_descriptors(state.config, state.channel)

    def _rebuild(self) -> None:
        sources = [
            BackendSource(s.config.name, s.descriptors, s.channel, self.backend_options[s.config.name], s.sync_channel)
            for s in self.backends.values()
            if s.descriptors is not None
        ]
        table, problems = RouteTable.build(sources, self.options)
        for p in problems:
            log.warning("route problem: %s", p)
        for listener in self.on_rebuild:
            listener(table)
        self.table, self.problems = table, problems  # the atomic swap
        self.generation += 1

    def _next_delay(self) -> float:
        t = self.config.transcoding
        failing = [s.failures for s in self.backends.values() if s.last_error is not None]
        delays = [t.reload_interval] if t.reload_interval > 0 else []
        if failing:
            delays.append(min(t.retry_interval * 2 ** (max(failing) - 1), max(t.reload_interval, t.retry_interval)))
        return min(delays) if delays else 3600.0

    async def check_health(self) -> None:
        """Ask every backend's grpc.health.v1 for its overall status ("" service)."""
        await asyncio.gather(*(self._check_one(s) for s in self.backends.values()))

    async def _check_one(self, state: BackendState) -> None:
        stub = health_pb2_grpc.HealthStub(state.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT)
            health = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as err:
            health = "UNIMPLEMENTED" if err.code() is grpc.StatusCode.UNIMPLEMENTED else "UNREACHABLE"
        if health != state.health:
            log.info("backend %s health: %s -> %s", state.config.name, state.health, health)
        state.health = health

    async def _watch_health(self) -> None:
        while True:
            try:
                await self.check_health()
            except Exception:  # the watcher must outlive any single failed check
                log.exception("backend health check failed")
            await asyncio.sleep(self.config.transcoding.health_interval)

    async def _watch(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._next_delay())
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.reload()
            except Exception:  # the watcher must outlive any single failed reload
                log.exception("descriptor reload failed")
