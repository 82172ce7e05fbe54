"""What scripts/soak.py and scripts/overload.py share: a gateway process on loopback,
its memory, an open-loop load generator with a bounded count, and percentiles.

The load is open-loop (requests start on a fixed schedule, whether or not earlier
ones have answered) and latency is measured from each request's scheduled start,
so a gateway that stalls is charged for the queue it builds (no coordinated
omission). Everything targets 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class GatewayProcess:
    """`edge serve` with a YAML config, as a child process on a loopback port."""

    def __init__(self, config_yaml: str, port: int) -> None:
        self.port = port
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-load-"))
        self.config_path = self.workdir / "edge.yaml"
        self.config_path.write_text(config_yaml)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> "GatewayProcess":
        log = open(self.workdir / "gateway.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(self.config_path)],
                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.workdir / 'gateway.log'}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the gateway did not become ready; see {self.workdir / 'gateway.log'}")

    def rss_bytes(self) -> int:
        """Resident memory of the gateway process (Linux /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no HTTP answer (connection error, client timeout)
    latency: float  # seconds from the scheduled start
    error: str | None = None


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    dropped: int = 0  # not started: the outstanding cap was reached (the client's own bound)
    max_outstanding: int = 0

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return dict(sorted(counts.items()))

    def latencies(self, *statuses: int) -> list[float]:
        return [o.latency for o in self.outcomes if not statuses or o.status in statuses]


Request = Callable[[httpx.AsyncClient, int], Awaitable[tuple[str, int]]]


async def open_loop(base_url: str, rate: float, duration: float, request: Request, *, max_outstanding: int = 2000,
                    timeout: float = 30.0, on_tick: Callable[[float], None] | None = None) -> LoadResult:
    """Start `request(client, n)` (returning (kind, status)) `rate` times a second for
    `duration` seconds; at most `max_outstanding` at once (beyond: counted as dropped)."""
    result = LoadResult()
    limits = httpx.Limits(max_connections=max_outstanding, max_keepalive_connections=max_outstanding)
    outstanding: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(rate * duration)
        next_tick = start + 1.0

        async def one(n: int, scheduled: float) -> None:
            try:
                kind, status = await request(client, n)
                result.outcomes.append(Outcome(kind, status, loop.time() - scheduled))
            except httpx.HTTPError as exc:
                result.outcomes.append(Outcome("error", 0, loop.time() - scheduled, type(exc).__name__))

        for n in range(total):
            scheduled = start + n / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if on_tick is not None and loop.time() >= next_tick:
                on_tick(loop.time() - start)
                next_tick += 1.0
            if len(outstanding) >= max_outstanding:
                result.dropped += 1
                continue
            task = asyncio.create_task(one(n, scheduled))
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
            result.max_outstanding = max(result.max_outstanding, len(outstanding))
        if outstanding:
            await asyncio.wait(outstanding, timeout=timeout + 5)
    return result
