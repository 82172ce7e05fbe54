#!/usr/bin/env python3
"""The gateway beside direct gRPC, Envoy's transcoder and a hand-written FastAPI app.

Run through `scripts/bench` (which installs wrk, h2load, Envoy and the Go
toolchain when missing). Everything listens on 127.0.0.1. It starts a gRPC
backend, Envoy (the gRPC-JSON transcoder alone, and as an edge with TLS, JWT, two
local rate limits and an access log: scripts/bench_envoy.py), the gateway in several
configurations and the FastAPI passthrough, then loads each with wrk
(HTTP/1.1, closed loop) or h2load (the HTTP/2 rows of the gateway and Envoy, with
8 streams in flight per connection; direct gRPC; fixed request rates for the
latency runs).

The backend (`--backend go`, the default) is scripts/bench_backend.go: it
replays the Python demo backend's answers to the benchmark's requests, recorded
from `python -m edgedemo.serve` at start, so a call costs the backend tens of
microseconds rather than ~300 and the backend does not bound req/s. The
batch-latency run needs the demo's per-item sleeps (x-demo-delay-ms), so it
goes through a gateway in front of the Python demo backend. `--backend python`
runs everything against the demo backend, as before.

Rounds are interleaved (every scenario once per round, `--runs` rounds) so a
noisy neighbour hits all scenarios alike; the table shows medians and the
spread (min-max) over rounds. The gateway CPU per request comes from
/proc/<pid>/stat (utime + stime) of the serving process over each run, so it
counts that server's own work, not the backend's. It still varies with load
(a busier server pays fewer wake-ups per request), so compare rows of one run.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos"), str(ROOT / "scripts")]

import bench_mobile  # noqa: E402
import bench_targets  # noqa: E402
from bench_envoy import write_envoy_config  # noqa: E402

PY = sys.executable
DESCRIPTORS = ROOT / "protos" / "edgedemo" / "descriptors.binpb"
CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS_URL = os.environ.get("EDGE_BENCH_REDIS", "redis://127.0.0.1:6379/13")
REDIS_PREFIX = "edgebench"
RESULTS_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-bench"
GO_BACKEND_SOURCE = ROOT / "scripts" / "bench_backend.go"
GO_LIBRARIES = os.environ.get("EDGE_BENCH_GOPATH", "/usr/share/gocode")  # Debian's golang-google-grpc-dev
LIST_BOOKS = "/edgedemo.library.v1.LibraryService/ListBooks"
CREATE_BOOK = "/edgedemo.library.v1.LibraryService/CreateBook"
SEARCH_BOOKS = "/edgedemo.library.v1.LibraryService/SearchBooks"  # the large reply (Go backend only)
HEALTH_CHECK = "/grpc.health.v1.Health/Check"  # the gateway polls it (transcoding.health_interval)
BACKEND_LABELS = {
    "go": "go (scripts/bench_backend.go, replaying the demo backend's answers)",
    "python": "python (python -m edgedemo.serve, the demo backend)",
}
BACKEND_NOTES = {
    "go": "scripts/bench_backend.go replaying the Python demo backend's answers (tens of µs per call); "
          "the batch-latency run uses a gateway in front of the Python demo backend",
    "python": "the Python demo backend (grpc.aio, ~300 µs CPU per call): it bounds req/s; compare CPU µs per request",
}

GET_PATH = "/v1/shelves/scifi/books?pageSize=2&genre=SCIENCE_FICTION"
POST_PATH = "/v1/shelves/poetry/books?requestId=bench-post"
# ~300 bytes of JSON: one book with most field kinds (int64 string, enum, repeated, Timestamp, Duration).
POST_BODY = json.dumps({
    "title": "The Dispossessed: An Ambiguous Utopia",
    "author": "Ursula K. Le Guin",
    "pageCount": 387,
    "isbn": "978-0061054884",
    "priceCents": "1299",
    "genre": "SCIENCE_FICTION",
    "tags": ["anarchism", "physics", "classic", "hainish-cycle"],
    "publishTime": "1974-05-01T00:00:00Z",
    "readDuration": "43200s",
}, separators=(",", ":"))
# Large messages (issue 16 item 5), with the Go backend only: a ~1 MiB reply of LARGE_BOOKS books
# (SearchBooks, canned: the demo caps pages at 1000 and holds a few books), and a ~256 KiB CreateBook
# body (a book with LARGE_TAGS tags) answered with the usual small book.
LARGE_BOOKS = 3500
LARGE_TAGS = 6500
LARGE_GET_PATH = "/v1/books:search?q=bench&pageSize=1000"
LARGE_POST_BODY = json.dumps({**json.loads(POST_BODY), "tags": [f"tag-{i:05d}-of-a-long-mobile-upload" for i in
                                                                range(LARGE_TAGS)]}, separators=(",", ":"))
LARGE_CONNECTIONS = 8  # fewer connections for the large rows: CPU per MiB, not how many MiB can queue
BATCH_ITEMS = 10
BATCH_BODY = json.dumps({"requests": [{"id": f"i{i}", "url": GET_PATH} for i in range(BATCH_ITEMS)]})
DELAY_HEADER = "x-demo-delay-ms"
IDLE_CONNECTIONS = 10_000  # --full: idle keep-alive connections held (issue 16 item 6)
H2_STREAMS = 8  # HTTP/2 rows: streams in flight per connection (a phone multiplexing one connection)


# ----------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """pid and every live process below it (a supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def tree_rss_mib(pid: int) -> float:
    total = 0.0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            total += rss_mib(member)
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


class Fleet:
    """Every process the benchmark started; all stopped on exit, whatever happens."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.servers: list[Server] = []

    def start(self, name: str, argv: list[str], url: str, ready: Callable[[], bool], env: dict | None = None,
              timeout: float = 60) -> Server:
        log = self.work / f"{name}.log"
        proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=self.work,
                                start_new_session=True)
        server = Server(name, proc, url, log)
        self.servers.append(server)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(Exception):
                if ready():
                    return server
            time.sleep(0.1)
        raise SystemExit(f"{name} did not become ready within {timeout}s; see {log}")

    def stop(self) -> None:
        for server in reversed(self.servers):
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGINT)
        for server in self.servers:
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


def http(method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method,
                                     headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10, context=_INSECURE) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# ----------------------------------------------------------------------------- backends

def bench_grpc_requests() -> dict[str, bytes]:
    """The benchmark's two gRPC requests, serialized: full method name -> request message."""
    from google.protobuf import json_format

    from edgedemo import library_pb2

    list_books = library_pb2.ListBooksRequest(parent="shelves/scifi", page_size=2, genre=library_pb2.SCIENCE_FICTION)
    create = library_pb2.CreateBookRequest(parent="shelves/poetry", request_id="bench-post")
    json_format.Parse(POST_BODY, create.book)
    return {LIST_BOOKS: list_books.SerializeToString(), CREATE_BOOK: create.SerializeToString()}


def large_reply() -> bytes:
    """LARGE_BOOKS books like the demo's (every field kind the GET's reply has), serialized."""
    from edgedemo import library_pb2

    reply = library_pb2.SearchBooksResponse()
    for i in range(LARGE_BOOKS):
        book = reply.books.add(name=f"shelves/scifi/books/b{i:05d}", title=f"A Long List Entry Number {i}",
                               author="Ursula K. Le Guin", page_count=100 + i % 900, isbn=f"978-{i:010d}",
                               price_cents=999 + i, genre=library_pb2.SCIENCE_FICTION,
                               tags=["classic", "hainish-cycle", f"t{i % 37}"])
        book.publish_time.FromSeconds(126230400 + i * 86400)
        book.read_duration.FromSeconds(3600 + i)
    return reply.SerializeToString()


def build_go_backend() -> Path:
    """Compile scripts/bench_backend.go into the cache directory, once per version of the source.

    GOPATH mode against Debian's golang-google-grpc-dev: no modules, no proxy. Raises RuntimeError.
    """
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` is not installed (scripts/bench installs golang-go and golang-google-grpc-dev)")
    source = GO_BACKEND_SOURCE.read_bytes()
    binary = RESULTS_DIR / f"bench-backend-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="edge-bench-go-") as gopath:
        package = Path(gopath) / "src" / "edgebenchbackend"
        package.mkdir(parents=True)
        (package / "main.go").write_bytes(source)
        env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOPATH=os.pathsep.join([gopath, GO_LIBRARIES]))
        print("building the Go backend (scripts/bench_backend.go) ...", file=sys.stderr, flush=True)
        try:
            out = subprocess.run([go, "build", "-o", str(partial), "."], cwd=package, env=env, capture_output=True,
                                 text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"go build: {exc}") from exc
        if out.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"go build failed:\n{(out.stdout + out.stderr).strip()[-2000:]}")
    os.replace(partial, binary)
    for old in RESULTS_DIR.glob("bench-backend-*"):  # builds of earlier versions of the source
        if old != binary and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)
    return binary


def raw_unary(target: str, calls: dict[str, bytes]) -> dict[str, bytes]:
    """Each method called once with the given serialized request; the serialized replies."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        return {method: channel.unary_unary(method)(request, timeout=10) for method, request in calls.items()}


def record_replies(demo_target: str, path: Path, canned: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Ask the Python demo backend the benchmark's requests; write its answers for the Go backend to replay,
    plus `canned` answers made here (the large reply)."""
    replies = {**raw_unary(demo_target, {**bench_grpc_requests(), HEALTH_CHECK: b""}), **(canned or {})}
    path.write_text(json.dumps({m: base64.b64encode(body).decode("ascii") for m, body in replies.items()}, indent=1)
                    + "\n")
    return replies


# ----------------------------------------------------------------------------- configs

def gateway_config(work: Path, name: str, port: int, backend_port: int, *, tls: tuple[Path, Path] | None = None,
                   jwks: Path | None = None, store: str | None = None, hybrid: bool = False,
                   compose: bool = False) -> Path:
    """One `edge serve` config. With `jwks`: JWT auth, two rate-limit policies and idempotency keys.
    With `compose`: the composed route scripts/bench_mobile.py measures."""
    lines = [
        "listen:",
        "  host: 127.0.0.1",
        f"  port: {port}",
    ]
    if tls:
        lines += ["  tls:", f"    cert_file: {tls[0]}", f"    key_file: {tls[1]}"]
    else:
        lines += ["  plaintext: true"]
    lines += [
        "admin: {enabled: false}",
        "backends:",
        "  - name: demo",
        f"    target: 127.0.0.1:{backend_port}",
        f"    descriptors: {DESCRIPTORS}",
        "transcoding:",
        f"  forward_headers: [{DELAY_HEADER}]",
        "  reload_interval: 0",
        "batch: {max_items: 20, max_concurrency: 10}",
        f"access_log: {{destination: {work / (name + '-access.log')}}}",
    ]
    if compose:
        lines += bench_mobile.compose_section()
    if jwks is not None:
        from edge.devtoken import DEV_AUDIENCE, DEV_ISSUER

        lines += [
            "auth:",
            "  issuers:",
            f"    - issuer: {DEV_ISSUER}",
            f"      audiences: [{DEV_AUDIENCE}]",
            f"      jwks_file: {jwks}",
            "      algorithms: [RS256]",
            "      expected_typ: at+jwt",
            "  identity_metadata: {x-user-id: sub, x-auth-scopes: scope}",
            "  default_policy: {auth: required}",
            "  policies:",
            '    - {match: "edgedemo.library.v1.LibraryService/*", scopes_all_of: [library.read]}',
            '    - {match: "edgedemo.library.v1.LibraryService/CreateBook", scopes_all_of: [library.write]}',
            "rate_limits:",
            f"  hybrid: {{enabled: {str(hybrid).lower()}, batch: 100}}",
            "  policies:",
            "    - {name: per-user, limit: 100000000, window: 1s, key: principal}",
            "    - {name: per-ip, limit: 100000000, window: 1s, key: ip}",
            "idempotency: {}",
        ]
        if store == "redis":
            lines += ["store:", "  backend: redis", "  redis:", f"    url: {REDIS_URL}", f"    key_prefix: {REDIS_PREFIX}"]
        else:
            lines += ["store: {backend: memory}"]
    path = work / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- load generators

WRK_SCRIPT = r"""
local method, body, idem_prefix = "%(method)s", %(body)s, %(idem)s
local headers = %(headers)s
local counter = 0
if idem_prefix == nil then
  wrk.method = method
  wrk.body = body
  for k, v in pairs(headers) do wrk.headers[k] = v end
end
if idem_prefix ~= nil then
  request = function()
    counter = counter + 1
    headers["Idempotency-Key"] = idem_prefix .. counter
    return wrk.format(method, nil, headers, body)
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%%d,\"duration_us\":%%d,\"errors\":%%d,\"status_errors\":%%d,\"p50\":%%d,\"p99\":%%d,\"p999\":%%d}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def _lua_string(value: str | None) -> str:
    if value is None:
        return "nil"
    return "[==[" + value + "]==]"


@dataclass
class Request:
    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotency: bool = False  # a fresh Idempotency-Key per request


def run_wrk(work: Path, url: str, req: Request, duration: float, connections: int) -> dict[str, float]:
    headers = {"content-type": "application/json", **req.headers} if req.body is not None else dict(req.headers)
    lua = WRK_SCRIPT % {
        "method": req.method,
        "body": _lua_string(req.body),
        "idem": _lua_string(secrets.token_hex(6) + "-") if req.idempotency else "nil",
        "headers": "{" + ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()) + "}",
    }
    script = work / "wrk.lua"
    script.write_text(lua)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", str(script), url + req.path],
        capture_output=True, text=True, timeout=duration + 60,
    )
    match = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"], "seconds": seconds, "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50"] / 1000, "p99_ms": raw["p99"] / 1000, "p999_ms": raw["p999"] / 1000,
        "errors": raw["errors"] + raw["status_errors"],
    }


def grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def run_h2load(work: Path, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
               duration: float, clients: int, streams: int = 1, rps_per_client: float | None = None,
               h1: bool = False, requests: int = 0) -> dict[str, float]:
    """h2load over a fixed duration; latency percentiles from its per-request log."""
    log = work / "h2load.log"
    log.unlink(missing_ok=True)
    argv = ["h2load", "-t1", f"-c{clients}", f"-m{streams}", f"--log-file={log}"]
    argv += [f"-n{requests}"] if requests else [f"-D{max(1, round(duration))}"]
    if h1:
        argv.append("--h1")
    if rps_per_client is not None:
        argv.append(f"--rps={rps_per_client:.3f}")
    if data is not None:
        body = work / "h2load.body"
        body.write_bytes(data)
        argv += ["-d", str(body)]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 120)
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     out.stdout)
    finished = re.search(r"finished in ([\d.]+)(m?s)", out.stdout)
    if not done or not finished or not log.exists():
        raise RuntimeError(f"h2load failed: {out.stdout}\n{out.stderr}")
    latencies = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            latencies.append(int(parts[2]) / 1000)
    latencies.sort()
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    succeeded = int(done.group(4))

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {
        "requests": succeeded, "seconds": seconds, "rps": succeeded / seconds,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
        "errors": int(done.group(5)) + int(done.group(6)),
    }


# ----------------------------------------------------------------------------- Redis round trips

def redis_segments(pid: int, redis_port: int) -> int:
    """Data segments the process has sent to Redis (one per request/pipeline write)."""
    out = subprocess.run(["ss", "-tinpH", "state", "established", "dst", f"127.0.0.1:{redis_port}"],
                         capture_output=True, text=True).stdout
    total, mine = 0, False
    for line in out.splitlines():
        if line[:1].strip():  # a socket line (with the process), its -i details follow indented
            mine = f"pid={pid}," in line
            continue
        if mine:
            match = re.search(r"data_segs_out:(\d+)", line)
            if match:
                total += int(match.group(1))
    return total


def redis_script_names() -> dict[str, str]:
    """The store's Lua scripts by SHA1 (what EVALSHA names them by), from the gateway code in this checkout."""
    try:
        from edge.state import redis_store

        return {hashlib.sha1(redis_store._lua(name).encode()).hexdigest(): name for name in redis_store._SCRIPTS}
    except Exception:  # another store layout: commands are named by SHA prefix instead
        return {}


def redis_commands(pid: int, redis_port: int, url: str, req: Request, count: int) -> dict[str, Any]:
    """The Redis commands one request makes, by name (a Lua script by its file name), from Redis's MONITOR
    while `count` requests run one after another: ss counts round trips; this says which trip is which
    (issue 16 item 3: the admission before the backend call, the completion after it)."""
    names = redis_script_names()
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{redis_port}"],
                         capture_output=True, text=True).stdout
    mine = {line.split()[2] for line in out.splitlines() if f"pid={pid}," in line and len(line.split()) > 2}
    line_re = re.compile(rb'\[\d+ ([\d.:]+)\] "(\w+)"(?: "([0-9a-f]{40})")?')
    seen: dict[str, int] = {}
    monitor = socket.create_connection(("127.0.0.1", redis_port), timeout=5)
    try:
        monitor.sendall(b"MONITOR\r\n")
        if not monitor.recv(5).startswith(b"+OK"):
            raise RuntimeError("MONITOR refused")
        monitor.settimeout(0.05)
        buffered = b""

        def drain() -> None:
            nonlocal buffered
            while True:
                try:
                    chunk = monitor.recv(1 << 16)
                except (socket.timeout, BlockingIOError):
                    return
                if not chunk:
                    return
                buffered += chunk
                *lines, buffered = buffered.split(b"\r\n")
                for line in lines:
                    match = line_re.search(line)
                    if match and match.group(1).decode() in mine:
                        command, sha = match.group(2).decode().lower(), match.group(3)
                        name = names.get(sha.decode(), sha.decode()[:8]) if command == "evalsha" and sha else command
                        seen[name] = seen.get(name, 0) + 1

        for _ in range(count):
            headers = dict(req.headers)
            if req.idempotency:
                headers["Idempotency-Key"] = "monitor-" + secrets.token_hex(6)
            status, body = http(req.method, url + req.path, req.body, headers)
            if status != 200:
                raise RuntimeError(f"{req.method} {req.path} answered {status}: {body[:200]!r}")
            drain()
        time.sleep(0.3)
        drain()
    finally:
        monitor.close()
    return {"requests": count, "per_request": {name: n / count for name, n in sorted(seen.items())}}


def redis_cleanup() -> int:
    """Delete the keys this benchmark made (its own prefix, its own database)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        for key in client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000):
            deleted += client.delete(key)
    finally:
        client.close()
    return deleted


# ----------------------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    key: str
    label: str
    server: str
    kind: str  # "wrk" (HTTP/1.1), "h2" (HTTP/2 with h2load: h2c, or h2 by ALPN on https) or "grpc"
    request: Request | None = None
    grpc_path: str = ""
    grpc_data: bytes = b""
    redis: bool = False
    per: int = 1  # calls per request (a batch counts its items)
    connections: int | None = None  # instead of --connections
    large: bool = False  # a large-message row: also CPU per MiB of its large side (Go backend only)
    payload_bytes: int = 0  # the large side's JSON bytes per request (set from the check request for GETs)
    runs: list[dict[str, float]] = field(default_factory=list)


def build_scenarios(token: str, full: bool, baseline: bool = False) -> list[Scenario]:
    auth = {"authorization": f"Bearer {token}"}
    get, post = Request("GET", GET_PATH), Request("POST", POST_PATH, POST_BODY)
    get_auth = Request("GET", GET_PATH, headers=auth)
    post_auth = Request("POST", POST_PATH, POST_BODY, headers=auth, idempotency=True)
    grpc_requests = bench_grpc_requests()
    scenarios = [
        Scenario("get.direct", "GET  direct gRPC (no gateway)", "backend", "grpc",
                 grpc_path=LIST_BOOKS, grpc_data=grpc_frame(grpc_requests[LIST_BOOKS])),
        Scenario("get.envoy", "GET  Envoy gRPC-JSON transcoder", "envoy", "wrk", get),
        Scenario("get.envoy-edge", "GET  Envoy edge: TLS+JWT+limits+log", "envoy-edge", "wrk", get_auth),
        Scenario("get.off", "GET  gateway, offloads off", "gw-off", "wrk", get),
        Scenario("get.on", "GET  gateway, TLS+JWT+limits (memory)", "gw-on", "wrk", get_auth),
        Scenario("get.on-redis", "GET  gateway, TLS+JWT+limits (Redis)", "gw-redis", "wrk", get_auth, redis=True),
        Scenario("get.on-hybrid", "GET  gateway, TLS+JWT+limits (Redis hybrid)", "gw-hybrid", "wrk", get_auth,
                 redis=True),
        Scenario("get.fastapi", "GET  FastAPI passthrough", "fastapi", "wrk", get),
        Scenario("get.floor", "GET  bare ASGI passthrough (no framework)", "floor", "wrk", get),
        Scenario("post.direct", "POST direct gRPC (no gateway)", "backend", "grpc",
                 grpc_path=CREATE_BOOK, grpc_data=grpc_frame(grpc_requests[CREATE_BOOK])),
        Scenario("post.envoy", "POST Envoy gRPC-JSON transcoder", "envoy", "wrk", post),
        Scenario("post.envoy-edge", "POST Envoy edge: TLS+JWT+limits+log", "envoy-edge", "wrk", post_auth),
        Scenario("post.off", "POST gateway, offloads off", "gw-off", "wrk", post),
        Scenario("post.on", "POST gateway, all on + Idempotency-Key (memory)", "gw-on", "wrk", post_auth),
        Scenario("post.on-redis", "POST gateway, all on + Idempotency-Key (Redis)", "gw-redis", "wrk", post_auth,
                 redis=True),
        Scenario("post.fastapi", "POST FastAPI passthrough", "fastapi", "wrk", post),
        Scenario("post.floor", "POST bare ASGI passthrough (no framework)", "floor", "wrk", post),
        Scenario("batch.10", f"POST gateway, batch of {BATCH_ITEMS} GETs (per item)", "gw-off", "wrk",
                 Request("POST", "/v1/batch", BATCH_BODY), per=BATCH_ITEMS),
        # Large messages: the reply (GET) or the body (POST) is the large side, CPU per MiB of it.
        Scenario("large.get-envoy", f"GET  ~1 MiB reply ({LARGE_BOOKS} books), Envoy", "envoy", "wrk",
                 Request("GET", LARGE_GET_PATH), connections=LARGE_CONNECTIONS, large=True),
        Scenario("large.get-off", f"GET  ~1 MiB reply ({LARGE_BOOKS} books), gateway off", "gw-off", "wrk",
                 Request("GET", LARGE_GET_PATH), connections=LARGE_CONNECTIONS, large=True),
        Scenario("large.post-envoy", f"POST ~256 KiB body ({LARGE_TAGS} tags), Envoy", "envoy", "wrk",
                 Request("POST", POST_PATH, LARGE_POST_BODY), connections=LARGE_CONNECTIONS, large=True,
                 payload_bytes=len(LARGE_POST_BODY)),
        Scenario("large.post-off", f"POST ~256 KiB body ({LARGE_TAGS} tags), gateway off", "gw-off", "wrk",
                 Request("POST", POST_PATH, LARGE_POST_BODY), connections=LARGE_CONNECTIONS, large=True,
                 payload_bytes=len(LARGE_POST_BODY)),
        # HTTP/2: the same requests, H2_STREAMS streams in flight on each of connections/H2_STREAMS connections.
        Scenario("get.envoy-h2", "GET  Envoy, HTTP/2 (h2c)", "envoy", "h2", get),
        Scenario("get.off-h2", "GET  gateway, offloads off, HTTP/2 (h2c)", "gw-off", "h2", get),
        Scenario("get.on-h2", "GET  gateway, TLS+JWT+limits (memory), HTTP/2 (h2)", "gw-on", "h2", get_auth),
        Scenario("get.envoy-edge-h2", "GET  Envoy edge, HTTP/2 (h2)", "envoy-edge", "h2", get_auth),
        Scenario("post.envoy-h2", "POST Envoy, HTTP/2 (h2c)", "envoy", "h2", post),
        Scenario("post.off-h2", "POST gateway, offloads off, HTTP/2 (h2c)", "gw-off", "h2", post),
    ]
    if full:
        scenarios.insert(3, Scenario("get.off-2w", "GET  gateway, offloads off, --workers 2", "gw-off-2w", "wrk", get))
    else:
        scenarios = [s for s in scenarios if s.key != "get.on-hybrid"]
    if baseline:  # keyed under the row they compare with, so `--only get.off` selects both
        scenarios += [Scenario("get.off.base", "GET  --baseline-src gateway, offloads off", "gw-base", "wrk", get),
                      Scenario("post.off.base", "POST --baseline-src gateway, offloads off", "gw-base", "wrk", post),
                      Scenario("get.on.base", "GET  --baseline-src gateway, TLS+JWT+limits", "gw-base-on",
                               "wrk", get_auth),
                      Scenario("post.on.base", "POST --baseline-src gateway, all on + Idem.-Key",
                               "gw-base-on", "wrk", post_auth)]
    return scenarios


def measure(work: Path, scenario: Scenario, server: Server, duration: float, connections: int,
            redis_port: int | None) -> dict[str, float]:
    cpu_of = tree_cpu_seconds if server.name.endswith("-2w") else cpu_seconds
    before_cpu = cpu_of(server.pid)
    before_segs = redis_segments(server.pid, redis_port) if scenario.redis and redis_port else 0
    if scenario.kind == "grpc":
        result = run_h2load(work, server.url + scenario.grpc_path, data=scenario.grpc_data,
                            headers={"content-type": "application/grpc", "te": "trailers"},
                            duration=duration, clients=4, streams=max(1, connections // 4))
    elif scenario.kind == "h2":
        req = scenario.request
        assert req is not None
        headers = {"content-type": "application/json", **req.headers} if req.body is not None else dict(req.headers)
        result = run_h2load(work, server.url + req.path, data=req.body.encode() if req.body is not None else None,
                            headers=headers, duration=duration, clients=max(1, connections // H2_STREAMS),
                            streams=min(H2_STREAMS, connections))
    else:
        assert scenario.request is not None
        result = run_wrk(work, server.url, scenario.request, duration, scenario.connections or connections)
    cpu = cpu_of(server.pid) - before_cpu
    calls = max(1, result["requests"]) * scenario.per
    result["cpu_us"] = cpu / calls * 1e6
    result["calls_per_s"] = result["rps"] * scenario.per
    if scenario.payload_bytes:
        result["cpu_us_per_mib"] = result["cpu_us"] / (scenario.payload_bytes / 2**20)
    if scenario.redis and redis_port:
        result["redis_trips"] = (redis_segments(server.pid, redis_port) - before_segs) / max(1, result["requests"])
    return result


def latency_at_rate(work: Path, url: str, req: Request, rate: float, duration: float, *, h1: bool,
                    grpc_data: bytes | None = None) -> dict[str, float]:
    clients = 16
    if grpc_data is not None:
        return run_h2load(work, url, data=grpc_data, headers={"content-type": "application/grpc", "te": "trailers"},
                          duration=duration, clients=clients, rps_per_client=rate / clients)
    headers = dict(req.headers)
    return run_h2load(work, url + req.path, headers=headers, duration=duration, clients=clients,
                      rps_per_client=rate / clients, h1=h1)


def batch_latency(base: str, rounds: int, delay_ms: int) -> dict[str, float]:
    """A 10-item batch of independent calls against its slowest item alone (backend delays 1/10..10/10 of delay_ms)."""
    import httpx

    delays = [delay_ms * (i + 1) // BATCH_ITEMS for i in range(BATCH_ITEMS)]
    items = [{"id": f"i{i}", "url": GET_PATH, "headers": {DELAY_HEADER: str(d)}} for i, d in enumerate(delays)]
    with httpx.Client(base_url=base, timeout=30) as client:
        def batch() -> None:
            r = client.post("/v1/batch", json={"requests": items})
            assert r.status_code == 200 and all(x["status"] == 200 for x in r.json()["responses"]), r.text[:300]

        def slowest() -> None:
            client.get(GET_PATH, headers={DELAY_HEADER: str(delays[-1])}).raise_for_status()

        def sequential() -> None:
            for d in delays:
                client.get(GET_PATH, headers={DELAY_HEADER: str(d)}).raise_for_status()

        out: dict[str, float] = {"delay_ms": delay_ms}
        for name, action, n in (("batch", batch, rounds), ("slowest", slowest, rounds), ("sequential", sequential, max(3, rounds // 3))):
            action()
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                action()
                samples.append((time.perf_counter() - started) * 1000)
            out[f"{name}_ms"] = statistics.median(samples)
    out["batch_over_slowest"] = out["batch_ms"] / out["slowest_ms"]
    return out


# ----------------------------------------------------------------------------- report

def summarize(scenario: Scenario) -> dict[str, Any]:
    def stat(key: str) -> dict[str, float]:
        values = [r[key] for r in scenario.runs if key in r]
        if not values:
            return {}
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "label": scenario.label,
        "runs": len(scenario.runs),
        **{k: stat(k) for k in ("rps", "calls_per_s", "p50_ms", "p99_ms", "p999_ms", "cpu_us", "redis_trips", "errors",
                                "cpu_us_per_mib")},
        **({"payload_bytes": scenario.payload_bytes} if scenario.payload_bytes else {}),
    }


def spread(s: dict[str, float], fmt: str) -> str:
    if not s:
        return "-"
    text = format(s["median"], fmt)
    if s["max"] > s["min"] and s["median"]:
        text += f" ±{(s['max'] - s['min']) / 2 / s['median'] * 100:.0f}%"
    return text


def print_table(results: dict[str, dict[str, Any]], backend: str) -> str:
    header = (f"{'scenario':50} {'req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'CPU µs/req':>14}"
              f" {'Redis/req':>9}")
    lines = [f"backend: {backend}", header, "-" * len(header)]
    for key, r in results.items():
        lines.append(
            f"{r['label']:50} {spread(r['rps'], '.0f'):>13} {r['p50_ms'].get('median', 0):>7.2f} "
            f"{r['p99_ms'].get('median', 0):>7.2f} {r['p999_ms'].get('median', 0):>8.2f} {spread(r['cpu_us'], '.0f'):>14}"
            f" {format(r['redis_trips']['median'], '.2f') if r.get('redis_trips') else '':>9}"
        )
    text = "\n".join(lines)
    print(text)
    return text


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    def med(key: str, what: str) -> float | None:
        r = results.get(key)
        return r[what]["median"] if r and r.get(what) else None

    out: dict[str, float] = {}
    pairs = {
        "get.off_cpu_vs_envoy": ("get.off", "get.envoy", "cpu_us"),
        "get.on_cpu_vs_envoy": ("get.on", "get.envoy", "cpu_us"),
        "get.on_cpu_vs_envoy-edge": ("get.on", "get.envoy-edge", "cpu_us"),
        "get.on-redis_cpu_vs_envoy-edge": ("get.on-redis", "get.envoy-edge", "cpu_us"),
        "post.on_cpu_vs_envoy-edge": ("post.on", "post.envoy-edge", "cpu_us"),
        "post.on-redis_cpu_vs_envoy-edge": ("post.on-redis", "post.envoy-edge", "cpu_us"),
        "get.on-h2_cpu_vs_envoy-edge-h2": ("get.on-h2", "get.envoy-edge-h2", "cpu_us"),
        "get.envoy-edge_cpu_vs_envoy": ("get.envoy-edge", "get.envoy", "cpu_us"),
        "post.off_cpu_vs_envoy": ("post.off", "post.envoy", "cpu_us"),
        "post.on_cpu_vs_envoy": ("post.on", "post.envoy", "cpu_us"),
        "get.off_rps_vs_fastapi": ("get.off", "get.fastapi", "rps"),
        "get.on_rps_vs_fastapi": ("get.on", "get.fastapi", "rps"),
        "post.off_rps_vs_fastapi": ("post.off", "post.fastapi", "rps"),
        "post.on_rps_vs_fastapi": ("post.on", "post.fastapi", "rps"),
        "get.off_cpu_vs_fastapi": ("get.off", "get.fastapi", "cpu_us"),
        "get.on_cpu_vs_fastapi": ("get.on", "get.fastapi", "cpu_us"),
        "batch_item_cpu_vs_single_get": ("batch.10", "get.off", "cpu_us"),
        "get.off_cpu_vs_bare": ("get.off", "get.floor", "cpu_us"),
        "get.2workers_rps_vs_1": ("get.off-2w", "get.off", "rps"),
        "get.fastapi_cpu_vs_bare": ("get.fastapi", "get.floor", "cpu_us"),
        "get.off-h2_cpu_vs_http11": ("get.off-h2", "get.off", "cpu_us"),
        "post.off-h2_cpu_vs_http11": ("post.off-h2", "post.off", "cpu_us"),
        "get.off-h2_cpu_vs_envoy-h2": ("get.off-h2", "get.envoy-h2", "cpu_us"),
        "post.off-h2_cpu_vs_envoy-h2": ("post.off-h2", "post.envoy-h2", "cpu_us"),
        "get.bare_cpu_vs_envoy": ("get.floor", "get.envoy", "cpu_us"),
        "large.get_cpu_per_mib_vs_envoy": ("large.get-off", "large.get-envoy", "cpu_us_per_mib"),
        "large.post_cpu_per_mib_vs_envoy": ("large.post-off", "large.post-envoy", "cpu_us_per_mib"),
        "get.off_cpu_vs_baseline": ("get.off", "get.off.base", "cpu_us"),
        "post.off_cpu_vs_baseline": ("post.off", "post.off.base", "cpu_us"),
        "get.on_cpu_vs_baseline": ("get.on", "get.on.base", "cpu_us"),
        "post.on_cpu_vs_baseline": ("post.on", "post.on.base", "cpu_us"),
    }
    for name, (a, b, what) in pairs.items():
        x, y = med(a, what), med(b, what)
        if x and y:
            out[name] = x / y
    return out


def scale_runs(quick: bool) -> dict[str, Any]:
    """--full's runs of scripts/bench_workers.py (item 4: CPU per request, 1 vs 2 workers, pinned) and
    scripts/idle_connections.py (item 6: RSS per idle connection of each kind, and a fixed-rate load's
    p99 with and without the idle crowd). Each starts and stops its own processes."""
    import bench_workers
    import idle_connections

    out: dict[str, Any] = {}

    def log(line: str) -> None:
        print(f"  {line}", flush=True)

    count = 1000 if quick else IDLE_CONNECTIONS
    try:
        out["workers"] = bench_workers.measure(600, 2 if quick else 6, 1 if quick else 3, log=log)
    except (SystemExit, RuntimeError) as exc:
        print(f"warning: the workers run failed: {exc}", file=sys.stderr)
    try:
        idle_connections.raise_file_limit(count)
        out["idle"] = {"rss": idle_connections.idle_rss(count, True, log=log),
                       "load": idle_connections.loaded(count, None, 3 if quick else 8, log=log)}
    except (SystemExit, RuntimeError, OSError) as exc:
        print(f"warning: the idle-connection run failed: {exc}", file=sys.stderr)
    return out


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 1-second round, no warm-up (< 1 minute)")
    parser.add_argument("--runs", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 4; --quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--only", help="comma-separated scenario keys or prefixes (e.g. get.off,post)")
    parser.add_argument("--json", type=Path, help="write the results here (default: ~/.cache/edge-bench/bench-<time>.json)")
    parser.add_argument("--envoy", default=os.environ.get("EDGE_BENCH_ENVOY", "envoy"), help="the envoy binary")
    parser.add_argument("--no-latency", action="store_true", help="skip the fixed-rate latency runs")
    parser.add_argument("--full", action="store_true", help=(
        "also the Redis hybrid mode, a 2-worker gateway, scripts/bench_workers.py's pinned runs and "
        "scripts/idle_connections.py's 10,000 idle connections (~20 min); the issue-16 targets table at the end"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    parser.add_argument("--backend", choices=("go", "python"), default="go", help=(
        "gRPC backend behind every server: go (default) replays the Python demo backend's answers from "
        "scripts/bench_backend.go, so the backend is not the bottleneck; python is the demo backend itself"))
    parser.add_argument("--baseline-src", type=Path, help=(
        "another checkout of edge (e.g. a `git worktree` of an older commit): also run its gateway, offloads off "
        "and all on, as get.off.base, post.off.base, get.on.base, post.on.base, for before/after ratios from one run"))
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs or (1 if args.quick else 3), 10))
    duration = max(1.0, min(args.duration or (1.0 if args.quick else 4.0), 30.0))
    connections = max(1, min(args.connections, 256))

    for tool in ("wrk", "h2load", "ss"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/bench installs it)")
    envoy = shutil.which(args.envoy)
    backend, backend_problem, go_binary = args.backend, None, None
    if backend == "go":
        try:
            go_binary = build_go_backend()
        except RuntimeError as exc:
            backend, backend_problem = "python", str(exc)
            print(f"warning: could not build the Go backend, so the Python demo backend serves every scenario: {exc}",
                  file=sys.stderr)

    from edge.devcert import ensure_dev_certificate
    from edge.devtoken import ensure_dev_issuer, mint_dev_token

    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    fleet = Fleet(work)
    started = time.monotonic()
    scenarios = build_scenarios("", args.full, bool(args.baseline_src))  # keys only, for --only
    wanted = [w.strip() for w in args.only.split(",")] if args.only else None

    def selected(key: str) -> bool:
        return wanted is None or any(key == w or key.startswith(w.rstrip(".") + ".") or key.startswith(w) for w in wanted)

    needed = {s.server for s in scenarios if selected(s.key)}
    if envoy is None and needed & {"envoy", "envoy-edge"}:
        print("warning: envoy not found; its scenarios are skipped", file=sys.stderr)
    redis_port = None
    if any(s.redis and selected(s.key) for s in scenarios):
        try:
            import redis

            redis.Redis.from_url(REDIS_URL).ping()
            redis_port = int(re.search(r":(\d+)/", REDIS_URL + "/").group(1)) if ":" in REDIS_URL.split("//")[1] else 6379
        except Exception as exc:  # Redis down: skip its scenarios, say so
            print(f"warning: Redis at {REDIS_URL} unreachable ({exc}); Redis scenarios are skipped", file=sys.stderr)
    try:
        cert, key = ensure_dev_certificate(work / "tls")
        issuer_key, jwks = ensure_dev_issuer(work / "issuer")
        token = mint_dev_token(issuer_key, "bench", "library.read library.write", lifetime=3600)
        scenarios = [s for s in build_scenarios(token, args.full, bool(args.baseline_src)) if selected(s.key)]
        if envoy is None:
            scenarios = [s for s in scenarios if not s.server.startswith("envoy")]
        if redis_port is None:
            scenarios = [s for s in scenarios if not s.redis]
        if backend != "go":  # the large reply is canned in the Go backend
            scenarios = [s for s in scenarios if not s.large]
        needed = {s.server for s in scenarios}

        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "protos"), str(ROOT)]))
        servers: dict[str, Server] = {}
        # The batch-latency run needs the demo backend's per-item sleeps (x-demo-delay-ms), which the Go
        # backend does not have: with --backend go it gets a gateway of its own in front of the demo backend.
        batch_latency_wanted = "gw-off" in needed and (wanted is None or any(w.startswith("batch") for w in wanted))
        # Composed-route latency and `fields` bytes (scripts/bench_mobile.py): a gateway of its own in front
        # of the demo backend, whose sleeps give each part a known time; `--only mobile` runs just that.
        mobile_wanted = wanted is None or any(w.startswith("mobile") for w in wanted)
        if mobile_wanted:
            needed.add("gw-mobile")
        demo_port = free_port()
        demo_name = "backend" if backend == "python" else "demo"
        servers[demo_name] = fleet.start(
            demo_name, [PY, "-m", "edgedemo.serve", "--port", str(demo_port)], f"http://127.0.0.1:{demo_port}",
            lambda: tcp_open(demo_port), env=env)
        backend_port = demo_port
        if backend == "go":
            assert go_binary is not None
            replies_file = work / "bench-backend-replies.json"
            replies = record_replies(f"127.0.0.1:{demo_port}", replies_file, {SEARCH_BOOKS: large_reply()})
            backend_port = free_port()
            servers["backend"] = fleet.start(
                "backend", [str(go_binary), "-port", str(backend_port), "-replies", str(replies_file)],
                f"http://127.0.0.1:{backend_port}", lambda: tcp_open(backend_port))
            if raw_unary(f"127.0.0.1:{backend_port}", {**bench_grpc_requests(), HEALTH_CHECK: b"", SEARCH_BOOKS: b""}) \
                    != replies:
                raise SystemExit("the Go backend does not answer what the demo backend answered; see "
                                 f"{servers['backend'].log}")
            if batch_latency_wanted:
                needed.add("gw-batch")
        if "envoy" in needed:
            port = free_port()
            config = write_envoy_config(work / "envoy.yaml", port, backend_port, DESCRIPTORS)
            servers["envoy"] = fleet.start(
                "envoy", [envoy, "-c", str(config), "--concurrency", "1", "--log-level", "warn",
                          "--base-id", str(os.getpid() % 60000)],
                f"http://127.0.0.1:{port}", lambda: http("GET", f"http://127.0.0.1:{port}{GET_PATH}")[0] == 200)
        if "envoy-edge" in needed:  # the same certificate, JWKS and access-log destination kind as gw-on
            from edge.devtoken import DEV_AUDIENCE, DEV_ISSUER

            port = free_port()
            config = write_envoy_config(work / "envoy-edge.yaml", port, backend_port, DESCRIPTORS, cert=cert, key=key,
                                        jwks=jwks, issuer=DEV_ISSUER, audience=DEV_AUDIENCE,
                                        access_log=work / "envoy-edge-access.log")
            servers["envoy-edge"] = fleet.start(
                "envoy-edge", [envoy, "-c", str(config), "--concurrency", "1", "--log-level", "warn",
                               "--use-dynamic-base-id"],
                f"https://127.0.0.1:{port}",
                lambda: http("GET", f"https://127.0.0.1:{port}{GET_PATH}", headers={"authorization": f"Bearer {token}"})[0]
                == 200)
        gateways = {
            "gw-base": {},  # --baseline-src's gateway, offloads off and all on (memory)
            "gw-base-on": {"tls": (cert, key), "jwks": jwks, "store": "memory"},
            "gw-off": {},
            "gw-batch": {},  # offloads off, in front of the demo backend: the batch-latency run with --backend go
            "gw-mobile": {"compose": True},  # in front of the demo backend: composed-route latency, `fields` bytes
            "gw-off-2w": {},
            "gw-on": {"tls": (cert, key), "jwks": jwks, "store": "memory"},
            "gw-redis": {"tls": (cert, key), "jwks": jwks, "store": "redis"},
            "gw-hybrid": {"tls": (cert, key), "jwks": jwks, "store": "redis", "hybrid": True},
        }
        for name, options in gateways.items():
            if name not in needed:
                continue
            port = free_port()
            on_demo = name in ("gw-batch", "gw-mobile")
            config = gateway_config(work, name, port, demo_port if on_demo else backend_port, **options)
            scheme = "https" if options.get("tls") else "http"
            url = f"{scheme}://127.0.0.1:{port}"
            gw_env = env
            if name.startswith("gw-base"):
                gw_env = dict(env, PYTHONPATH=os.pathsep.join([str(args.baseline_src.resolve()), env["PYTHONPATH"]]))
            workers = ["--workers", "2"] if name.endswith("-2w") else []
            servers[name] = fleet.start(name, [PY, "-m", "edge.cli", "serve", "--config", str(config), "--log-level",
                                               "warning", *workers], url,
                                        lambda url=url: http("GET", url + "/readyz")[0] == 200, env=gw_env)
        for name, extra_args in (("fastapi", []), ("floor", ["--bare"])):
            if name not in needed:
                continue
            port = free_port()
            servers[name] = fleet.start(
                name, [PY, str(ROOT / "scripts" / "bench_fastapi_passthrough.py"), "--port", str(port),
                       "--backend", f"127.0.0.1:{backend_port}", *extra_args],
                f"http://127.0.0.1:{port}", lambda port=port: tcp_open(port), env=env)

        # Every HTTP scenario answers 2xx with a sane body before it is timed.
        for s in scenarios:
            if s.kind not in ("wrk", "h2"):
                continue
            assert s.request is not None
            headers = dict(s.request.headers)
            if s.request.idempotency:
                headers["Idempotency-Key"] = "check-" + secrets.token_hex(4)
            status, body = http(s.request.method, servers[s.server].url + s.request.path, s.request.body, headers)
            if status != 200:
                raise SystemExit(f"{s.key}: {s.request.method} {s.request.path} answered {status}: {body[:300]!r}")
            if s.large and not s.payload_bytes:  # a large reply: its JSON, as this server prints it
                s.payload_bytes = len(body)
        rss_start = {name: tree_rss_mib(srv.pid) for name, srv in servers.items()}

        print(f"edge bench: {len(scenarios)} scenarios x {runs} rounds x {duration:g}s, {connections} connections, "
              f"backend {backend}; work dir {work}", flush=True)
        for s in scenarios:  # warm-up: connections, channels, plans, allocator (the check request does it for --quick)
            if s.kind == "wrk" and not args.quick:
                run_wrk(work, servers[s.server].url, s.request, 1, connections)
        for round_no in range(runs):
            for s in scenarios:
                result = measure(work, s, servers[s.server], duration, connections, redis_port)
                s.runs.append(result)
                print(f"  round {round_no + 1} {s.key:15} {result['rps']:8.0f} req/s  p99 {result['p99_ms']:6.2f} ms  "
                      f"CPU {result['cpu_us']:6.0f} µs/call"
                      + (f"  Redis trips/req {result['redis_trips']:.2f}" if "redis_trips" in result else "")
                      + (f"  ERRORS {result['errors']:.0f}" if result["errors"] else ""), flush=True)

        results = {s.key: summarize(s) for s in scenarios}
        extra: dict[str, Any] = {}
        # p99 at fixed rates: half and 80% of the gateway's own measured maximum, direct gRPC at the same rates.
        if not args.no_latency:
            extra["latency_at_rate"] = []
            for key, server_name in (("get.off", "gw-off"), ("get.on", "gw-on")):
                if key not in results or "get.direct" not in results:
                    continue
                top = results[key]["rps"]["median"]
                s = next(x for x in scenarios if x.key == key)
                direct = next(x for x in scenarios if x.key == "get.direct")
                for share in (0.5, 0.8):
                    rate = top * share
                    gw = latency_at_rate(work, servers[server_name].url, s.request, rate, duration, h1=True)
                    dr = latency_at_rate(work, servers["backend"].url + direct.grpc_path, s.request, rate, duration,
                                         h1=False, grpc_data=direct.grpc_data)
                    row = {"scenario": key, "share_of_max": share, "rate": round(rate),
                           "gateway_p50_ms": gw["p50_ms"], "gateway_p99_ms": gw["p99_ms"], "gateway_p999_ms": gw["p999_ms"],
                           "direct_p50_ms": dr["p50_ms"], "direct_p99_ms": dr["p99_ms"],
                           "added_p99_ms": gw["p99_ms"] - dr["p99_ms"], "achieved_rps": gw["rps"]}
                    extra["latency_at_rate"].append(row)
                    print(f"  latency {key} at {share:.0%} of max ({rate:.0f} req/s): gateway p99 {gw['p99_ms']:.2f} ms, "
                          f"direct p99 {dr['p99_ms']:.2f} ms", flush=True)
        # Added latency without load: one connection, one request at a time (h2load, HTTP/1.1 for the gateways).
        if not args.no_latency:
            extra["latency_one_connection"] = {}
            count = 300 if args.quick else 1000
            for key in ("get.direct", "get.envoy", "get.off", "get.on", "get.fastapi"):
                s = next((x for x in scenarios if x.key == key), None)
                if s is None:
                    continue
                srv = servers[s.server]
                if s.kind == "grpc":
                    r = run_h2load(work, srv.url + s.grpc_path, data=s.grpc_data, requests=count,
                                   headers={"content-type": "application/grpc", "te": "trailers"}, duration=0, clients=1)
                else:
                    r = run_h2load(work, srv.url + s.request.path, headers=dict(s.request.headers), requests=count,
                                   duration=0, clients=1, h1=True)
                extra["latency_one_connection"][key] = {k: r[k] for k in ("p50_ms", "p99_ms", "p999_ms", "rps")}
                print(f"  one connection {key:12} p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms", flush=True)
        if batch_latency_wanted:
            extra["batch_latency"] = batch_latency(servers.get("gw-batch", servers["gw-off"]).url,
                                                   5 if args.quick else 15, 50)
            extra["batch_latency"]["backend"] = "python"  # the demo backend sleeps on the items
            b = extra["batch_latency"]
            print(f"  batch of {BATCH_ITEMS} (item delays up to {b['delay_ms']} ms): {b['batch_ms']:.1f} ms, slowest item "
                  f"alone {b['slowest_ms']:.1f} ms ({b['batch_over_slowest']:.2f}x), {BATCH_ITEMS} sequential "
                  f"{b['sequential_ms']:.1f} ms", flush=True)
        if mobile_wanted:
            extra["mobile"] = bench_mobile.measure(servers["gw-mobile"].url, 5 if args.quick else 15)
            extra["mobile"]["backend"] = "python"  # the demo backend sleeps on the parts
            for line in bench_mobile.report(extra["mobile"]):
                print(f"  {line}", flush=True)
        if redis_port is not None:  # which Redis command each round trip is (issue 16 item 3)
            extra["redis_commands"] = {}
            for key in ("get.on-redis", "post.on-redis"):
                s = next((x for x in scenarios if x.key == key), None)
                if s is None:
                    continue
                try:
                    found = redis_commands(servers[s.server].pid, redis_port, servers[s.server].url, s.request, 50)
                except (OSError, RuntimeError) as exc:
                    print(f"warning: no Redis command breakdown for {key}: {exc}", file=sys.stderr)
                    continue
                extra["redis_commands"][key] = found
                print(f"  Redis commands per request, {key}: "
                      + ", ".join(f"{name} {n:.2f}" for name, n in found["per_request"].items()), flush=True)
        extra["rss_mib"] = {name: {"start": rss_start[name], "end": tree_rss_mib(srv.pid)}
                           for name, srv in servers.items()}
        extra["backend_cpu_note"] = BACKEND_NOTES[backend]

        print()
        table = print_table(results, BACKEND_LABELS[backend])
        rel = ratios(results)
        print()
        for name, value in rel.items():
            print(f"  {name:32} {value:5.2f}x")
        for key, r in results.items():
            if r.get("cpu_us_per_mib"):
                print(f"  {r['label']:50} {r['payload_bytes'] / 1024:7.0f} KiB JSON  "
                      f"{r['cpu_us_per_mib']['median'] / 1000:7.2f} ms CPU per MiB")
        for row in extra.get("latency_at_rate", []):
            print(f"  p99 added by the gateway ({row['scenario']}, {row['share_of_max']:.0%} of max = {row['rate']} req/s): "
                  f"{row['added_p99_ms']:.2f} ms (gateway {row['gateway_p99_ms']:.2f}, direct {row['direct_p99_ms']:.2f})")
        one = extra.get("latency_one_connection", {})
        if "get.direct" in one:
            for key, row in one.items():
                if key != "get.direct":
                    print(f"  added latency, one connection ({key}): p50 {row['p50_ms'] - one['get.direct']['p50_ms']:.2f} ms, "
                          f"p99 {row['p99_ms'] - one['get.direct']['p99_ms']:.2f} ms")
        for name, mem in extra["rss_mib"].items():
            print(f"  RSS {name:9} {mem['start']:6.1f} -> {mem['end']:6.1f} MiB")
        if args.full and wanted is None:
            # Items 4 and 6 of issue 16 need the machine to themselves: the fleet above stops first.
            fleet.stop()
            extra.update(scale_runs(args.quick))
        load_average = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        document = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
            "settings": {"runs": runs, "duration_s": duration, "connections": connections, "quick": args.quick,
                         "backend": backend},
            "backend": {"kind": backend, "requested": args.backend, "label": BACKEND_LABELS[backend],
                        **({"fallback_reason": backend_problem} if backend_problem else {})},
            "results": results, "ratios": rel, **extra, "table": table,
            "load_average_at_end": load_average,
            "elapsed_s": round(time.monotonic() - started, 1),
        }
        document["targets"] = [vars(v) for v in bench_targets.verdicts(document)]
        print()
        print(bench_targets.render(bench_targets.verdicts(document)))
        print(f"load average at the end: {load_average} (a shared {os.cpu_count()}-CPU machine: compare rows of one run)")
        out = args.json or RESULTS_DIR / time.strftime("bench-%Y%m%d-%H%M%S.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"\nresults: {out}  ({document['elapsed_s']:.0f}s)")
    finally:
        fleet.stop()
        if redis_port is not None:
            with contextlib.suppress(Exception):
                redis_cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
