"""One compact JSON line per request (and per batch item), written off the event loop.

`AccessLogger.log` only serializes (orjson) and enqueues; a writer thread
drains the queue and writes whole lines with `os.write`, at most PIPE_BUF
bytes per write when lines allow, so lines from several worker processes
sharing stdout or an O_APPEND file never interleave mid-line. If the sink
stalls, the queue is bounded and further lines are counted in `dropped`
rather than growing memory or blocking requests.

Query strings, headers and bodies are not logged unless configured; whatever
is logged goes through redaction first. Names are compared ignoring case,
'-' and '_' (so `api_key`, `apiKey` and `API-Key` are the same name).
Credentials (`authorization`, `cookie`, `x-api-key`, ...) are always redacted.
"""
from __future__ import annotations

import asyncio
import atexit
import os
import queue
import random
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote

import grpc
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

REDACTED = "[REDACTED]"
ALWAYS_REDACTED = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "access_token")
IdempotencyOutcome = str  # "new" | "replayed" | "conflict" | "mismatch" | "none"

_GRPC_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}
_PIPE_BUF = 4096
# A regular file opened O_APPEND takes each write whole, whoever else appends (other
# workers), so it gets few large writes; a pipe keeps lines whole only up to PIPE_BUF.
_FILE_CHUNK = 256 * 1024
_COALESCE_S = 0.02  # the writer wakes at most ~50 times a second


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_second: tuple[int, str] = (-1, "")  # the last whole second formatted; replaced whole, so thread-safe


def utc_timestamp(epoch: float | None = None) -> str:
    """RFC 3339, UTC, millisecond precision: 2024-05-01T12:00:00.123Z."""
    global _second
    t = time.time() if epoch is None else epoch
    second, millis = divmod(int(t * 1000), 1000)
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{millis:03d}Z"


class AccessLogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    include_query: bool = False
    include_headers: list[str] = Field(default_factory=list, description="request header names to log")
    include_body: bool = False
    max_body_bytes: int = Field(8192, gt=0, description="larger bodies are summarized, not logged")
    redact: list[str] = Field(
        default_factory=list, description="header, query parameter and JSON field names whose values are hidden"
    )
    sample: float = Field(1.0, ge=0.0, le=1.0, description="fraction of successful requests logged; errors always are")
    destination: str = Field("stdout", description="'stdout', 'stderr' or a file path (appended to)")
    max_pending: int = Field(
        10000, gt=0, description="lines queued for the writer thread (stdout, pipes) before new ones are dropped")

    @field_validator("include_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        if value not in ("stdout", "stderr") and not Path(value).parent.is_dir():
            raise ValueError(f"access log directory {str(Path(value).parent)!r} does not exist")
        return value


@dataclass
class AuthInfo:
    decision: str  # "allow" | "deny" | "anonymous"
    reason: str | None = None


@dataclass
class RateLimitInfo:
    policy: str
    limit: int
    remaining: int
    decision: str  # "allow" | "deny"


@dataclass(kw_only=True)  # no __slots__: orjson serializes __dict__ dataclasses ~5x faster
class AccessLogEntry:
    """Filled in along the request path; logged once when the response is done.
    `principal` is the subject only, `path` the path only (no query)."""

    timestamp: str = field(default_factory=utc_timestamp)
    request_id: str
    batch_id: str | None = None
    client_ip: str | None = None
    principal: str | None = None
    http_method: str
    http_version: str = "1.1"  # the ASGI scope's: "1.1" or "2"
    protocol: str = "rest"  # the client protocol's adapter (edge/protocols/)
    path: str
    route: str | None = None
    grpc_method: str | None = None
    http_status: int = 0
    grpc_status: grpc.StatusCode | int | str | None = None  # logged as the code's name, e.g. "NOT_FOUND"
    bytes_in: int = 0
    bytes_out: int = 0
    duration_ms: float = 0.0
    gateway_ms: float = 0.0
    backend_ms: float | None = None
    auth: AuthInfo | None = None
    ratelimit: RateLimitInfo | None = None
    idempotency: IdempotencyOutcome = "none"
    user_agent: str | None = None

    def set_timings(self, total_s: float, backend_s: float | None = None) -> None:
        """Total, backend and (their difference) gateway time, in milliseconds."""
        self.duration_ms = round(total_s * 1000, 3)
        if backend_s is None:
            self.gateway_ms = self.duration_ms
        else:
            self.backend_ms = round(backend_s * 1000, 3)
            self.gateway_ms = round(max(0.0, total_s - backend_s) * 1000, 3)


class Redactor:
    """Hides the values of configured names in headers, query strings and JSON bodies."""

    def __init__(self, names: list[str]) -> None:
        self.names = frozenset(_norm(n) for n in (*ALWAYS_REDACTED, *names))

    def headers(self, headers: Mapping[str, str], include: list[str]) -> dict[str, str]:
        out = {}
        for name in include:
            if name in headers:
                out[name] = REDACTED if _norm(name) in self.names else headers[name]
        return out

    def query(self, query: bytes | str) -> str:
        text = query.decode("latin-1") if isinstance(query, bytes) else query
        pairs = parse_qsl(text, keep_blank_values=True, errors="replace")
        return "&".join(
            f"{quote(k, safe='')}={REDACTED if _norm(k) in self.names else quote(v, safe='')}" for k, v in pairs
        )

    def json(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if _norm(k) in self.names else self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value


class _FileWriter:
    """Regular files: the event loop thread buffers lines and writes them itself,
    every 20 ms or every 256 KiB, as nginx's `access_log ... buffer= flush=` does.

    A page-cache write of a few KiB costs less than handing lines to a thread: the
    writer thread's GIL hand-offs cost the loop ~16 µs per request (per-thread CPU,
    in-process, 16 concurrent GETs). Outside a running loop a line is written at once.
    """

    def __init__(self, fd: int, owns_fd: bool) -> None:
        self._fd = fd
        self._owns_fd = owns_fd
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0
        self._closed = False

    def put(self, line: bytes) -> None:
        if self._closed:
            self.dropped += 1
            return
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FILE_CHUNK:
            self.flush()
        elif self._timer is None or self._timer_loop.is_closed():  # type: ignore[union-attr]
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer_loop = loop
            self._timer = loop.call_later(_COALESCE_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines, self._size = self._lines, [], 0
        try:
            _write_all(self._fd, b"".join(lines))
        except OSError:
            self.dropped += len(lines)  # a full disk must not take the gateway down

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._owns_fd:
            os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _LineWriter:
    """Pipes, terminals and sockets (stdout to a collector): a daemon thread writes
    queued lines, so a slow reader never blocks the event loop."""

    def __init__(self, fd: int, owns_fd: bool, max_pending: int) -> None:
        self._fd = fd
        self._owns_fd = owns_fd
        self._max_pending = max_pending
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="edge-accesslog", daemon=True)
        self._thread.start()

    def put(self, line: bytes) -> None:
        if self._closed or self._queue.qsize() >= self._max_pending:
            self.dropped += 1
            return
        self._queue.put(line)

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._owns_fd:
            os.close(self._fd)

    def _run(self) -> None:
        q = self._queue
        while True:
            lines = [q.get()]
            # Let lines gather before draining: waking for every line costs the
            # event loop a GIL hand-off per request (measured ~40 µs/request).
            time.sleep(_COALESCE_S)
            try:
                while len(lines) < 1024:
                    lines.append(q.get_nowait())
            except queue.Empty:
                pass
            done = lines[-1] is None
            self._write([line for line in lines if line is not None])
            if done:
                return

    def _write(self, lines: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > _PIPE_BUF:
                self._write_all(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write_all(b"".join(chunk))

    def _write_all(self, data: bytes) -> None:
        try:
            _write_all(self._fd, data)
        except OSError:
            self.dropped += 1  # a closed stdout must not kill the writer


class AccessLogger:
    """`log(entry)` costs a few microseconds on the event loop; lines reach the sink in batches."""

    def __init__(self, config: AccessLogConfig) -> None:
        self.config = config
        self._redactor = Redactor(config.redact)
        self._writer: _FileWriter | _LineWriter | None = None
        if config.enabled:
            if config.destination == "stdout":
                fd, owns = sys.stdout.fileno(), False
            elif config.destination == "stderr":
                fd, owns = sys.stderr.fileno(), False
            else:
                fd, owns = os.open(config.destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640), True
            if stat.S_ISREG(os.fstat(fd).st_mode):
                self._writer = _FileWriter(fd, owns)
            else:
                self._writer = _LineWriter(fd, owns, config.max_pending)
            atexit.register(self.close)

    @property
    def dropped(self) -> int:
        """Lines lost because the sink could not keep up (or was closed)."""
        return self._writer.dropped if self._writer else 0

    def log(
        self,
        entry: AccessLogEntry,
        *,
        query: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> None:
        writer = self._writer
        if writer is None:
            return
        config = self.config
        if config.sample < 1.0 and entry.http_status < 400 and random.random() >= config.sample:
            return
        status = entry.grpc_status
        if isinstance(status, grpc.StatusCode):
            entry.grpc_status = status.name
        elif type(status) is int:
            entry.grpc_status = _GRPC_NAMES.get(status, str(status))
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        extras = self._extras(query, headers, body)
        if extras:
            line = line[:-2] + b"," + orjson.dumps(extras, option=orjson.OPT_APPEND_NEWLINE)[1:]
        writer.put(line)

    def _extras(self, query: bytes | str | None, headers: Mapping[str, str] | None, body: bytes | None) -> dict[str, Any]:
        config = self.config
        extras: dict[str, Any] = {}
        if config.include_query and query:
            extras["query"] = self._redactor.query(query)
        if config.include_headers and headers:
            extras["headers"] = self._redactor.headers(headers, config.include_headers)
        if config.include_body and body:
            extras["body"] = self._body(body)
        return extras

    def _body(self, body: bytes) -> Any:
        if len(body) > self.config.max_body_bytes:
            return f"<{len(body)} bytes, over the {self.config.max_body_bytes}-byte log limit>"
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return f"<{len(body)} bytes, not JSON>"
        return self._redactor.json(parsed)

    def close(self) -> None:
        """Write what is queued and stop the writer (call at shutdown)."""
        if self._writer is not None:
            self._writer.close()
