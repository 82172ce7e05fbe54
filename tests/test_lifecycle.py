"""Shutdown and workers, with `edge serve` as a real subprocess in front of a real backend."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gateway at {url} never became ready")


def _start(tmp_path: Path, target: str, *extra: str, pre_drain: str = "1s", drain: str = "10s",
           admin_port: int | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}, plaintext: true}}\n"
        + (f"admin: {{port: {admin_port}}}\n" if admin_port else "admin: {enabled: false}\n") +
        f"lifecycle: {{pre_drain_delay: {pre_drain}, drain_timeout: {drain}}}\n"
        f"transcoding: {{forward_headers: [x-request-id, x-demo-delay-ms]}}\n"
        f"backends: [{{name: demo, target: '{target}', timeout: 20s}}]\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config), *extra], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    return proc, url


def test_sigterm_drains_slow_request_and_stream(tmp_path, demo_backend):
    proc, url = _start(tmp_path, demo_backend.target, pre_drain="1s")
    results: dict[str, object] = {}

    def slow() -> None:
        results["slow"] = httpx.get(f"{url}/v1/shelves/scifi", headers={"x-demo-delay-ms": "2500"}, timeout=30).status_code

    def stream() -> None:
        with httpx.stream("GET", f"{url}/v1/shelves/scifi/books:stream", params={"delayMs": 500}, timeout=30) as r:
            results["stream"] = [json.loads(line) for line in r.iter_lines() if line]

    workers = [threading.Thread(target=slow), threading.Thread(target=stream)]
    try:
        for w in workers:
            w.start()
        assert demo_backend.recorder.wait_for("GetShelf") and demo_backend.recorder.wait_for("StreamBooks")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Readiness fails at once, while the listener still answers during the pre-drain delay.
        assert httpx.get(f"{url}/readyz", timeout=2).status_code == 503
        time.sleep(1.5)
        # After the pre-drain delay the listener is closed: new connections are refused.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)
        for w in workers:
            w.join(30)
        assert results["slow"] == 200
        lines = results["stream"]
        assert len(lines) == 4 and all("name" in line for line in lines), lines  # the whole shelf, no error line
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_drain_timeout_cancels_outstanding_calls(tmp_path, demo_backend):
    proc, url = _start(tmp_path, demo_backend.target, pre_drain="0s", drain="1s")
    done: dict[str, object] = {}

    def slow() -> None:
        try:
            done["status"] = httpx.get(f"{url}/v1/shelves/scifi", headers={"x-demo-delay-ms": "15000"}, timeout=30).status_code
        except httpx.HTTPError as exc:
            done["error"] = type(exc).__name__

    t = threading.Thread(target=slow)
    try:
        t.start()
        assert demo_backend.recorder.wait_for("GetShelf")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 10
        t.join(10)
        # The backend saw its call cancelled instead of running to the end.
        assert demo_backend.recorder.wait_for("GetShelf", finished=True, timeout=5)
        assert demo_backend.recorder.cancelled["GetShelf"] == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_share_one_port_and_are_replaced(tmp_path, demo_backend):
    admin = _free_port()
    proc, url = _start(tmp_path, demo_backend.target, "--workers", "2", pre_drain="0s", admin_port=admin)
    try:
        children = _children(proc.pid)
        assert len(children) == 2, children
        # Readiness came from whichever worker answered first; worker 0 (the one with the admin
        # listener) may still be starting under load: wait for it before counting.
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the admin listener never came up"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=10) as c:
            for _ in range(20):
                assert c.get("/v1/shelves/scifi", headers={"connection": "close"}).status_code == 200
        # Metrics from both workers are summed, whichever one served the admin request.
        # A request is counted just after its answer is sent: allow the last ones a moment.
        deadline = time.monotonic() + 5
        while True:
            text = httpx.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
            served = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith("edge_requests_total{") and 'http_status="200"' in line)
            if served >= 20 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert served == 20, text
        victim = children[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (victim in _children(proc.pid) or len(_children(proc.pid)) < len(children)):
            time.sleep(0.2)
        assert victim not in _children(proc.pid) and len(_children(proc.pid)) == 2
        _wait_ready(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    """Worker processes of the supervisor (multiprocessing's resource tracker excluded)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"resource_tracker" not in cmdline:
            out.append(int(entry.name))
    return sorted(out)


def _started_at(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None once it has exited.

    A zombie counts as exited (a reaper that is not ours may not have collected it yet), and the
    start time tells a worker apart from a new process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_workers_stop_when_their_supervisor_is_killed(tmp_path, demo_backend):
    """A supervisor killed with SIGKILL (or crashing) cannot tell its workers to stop: they notice by
    themselves, finish what they are serving as on SIGTERM, exit, and leave the port free."""
    proc, url = _start(tmp_path, demo_backend.target, "--workers", "2", pre_drain="0s", drain="10s")
    port = int(url.rsplit(":", 1)[1])
    workers = {pid: _started_at(pid) for pid in _children(proc.pid)}
    result: dict[str, object] = {}

    def slow() -> None:
        try:
            result["status"] = httpx.get(f"{url}/v1/shelves/scifi", headers={"x-demo-delay-ms": "2500"}, timeout=30).status_code
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    def alive() -> list[int]:
        return [pid for pid, started in workers.items() if started is not None and _started_at(pid) == started]

    request = threading.Thread(target=slow)
    try:
        assert len(workers) == 2 and len(alive()) == 2, workers
        request.start()
        assert demo_backend.recorder.wait_for("GetShelf")
        proc.kill()
        proc.wait(10)
        request.join(30)
        assert result == {"status": 200}  # drained, not cut off mid-request
        # A bound on a hang, not a measurement: a worker normally exits once its request is done.
        assert wait_for(lambda: not alive(), timeout=15), f"orphaned workers still running: {alive()}"
        with pytest.raises(OSError):  # nothing accepts on the port any more...
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        with socket.socket() as again:  # ...and a new gateway can listen on it
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
            again.listen()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in alive():  # orphans of this test are not left behind for the rest of the run
            os.kill(pid, signal.SIGKILL)
        if request.ident is not None:
            request.join(30)


def test_sigterm_drains_http2_streams_on_one_connection(tmp_path, demo_backend):
    """h2c: a slow call and a stream share one connection; SIGTERM sends GOAWAY, both finish whole."""
    from tests.support.h2raw import RawH2

    proc, url = _start(tmp_path, demo_backend.target, pre_drain="1s")
    conn = RawH2(int(url.rsplit(":", 1)[1]))
    try:
        slow = conn.request("/v1/shelves/scifi", extra=[("x-demo-delay-ms", "2500")])
        stream = conn.request("/v1/shelves/scifi/books:stream?delayMs=500")
        assert demo_backend.recorder.wait_for("GetShelf") and demo_backend.recorder.wait_for("StreamBooks")
        proc.send_signal(signal.SIGTERM)
        assert conn.read_until(lambda: conn.goaway is not None, 10)
        assert conn.goaway.error_code == 0 and conn.goaway.last_stream_id == stream
        assert conn.response(slow, 30).status == 200
        reply = conn.response(stream, 30)
        lines = [json.loads(line) for line in reply.body.splitlines() if line]
        assert reply.status == 200 and len(lines) == 4 and all("name" in line for line in lines)
        assert conn.wait_closed(10)
        assert proc.wait(30) == 0
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_serve_http2(tmp_path, demo_backend):
    proc, url = _start(tmp_path, demo_backend.target, "--workers", "2", pre_drain="0s")
    try:
        for _ in range(4):  # new connections land on either worker
            with httpx.Client(base_url=url, http1=False, http2=True, timeout=10) as c:
                r = c.get("/v1/shelves/scifi")
                assert r.status_code == 200 and r.http_version == "HTTP/2"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "two-workers"])
def test_sigterm_the_moment_the_port_opens_drains(tmp_path, demo_backend, workers):
    """An orchestrator may send SIGTERM as soon as the port accepts, while start-up is still
    finishing (gc.collect/freeze, or workers still starting): the process must drain and exit 0,
    not die of the signal, and leave nothing listening behind it."""
    port = _free_port()
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}, plaintext: true}}\nadmin: {{enabled: false}}\n"
        f"lifecycle: {{pre_drain_delay: 0s, drain_timeout: 5s}}\n"
        f"backends: [{{name: demo, target: '{demo_backend.target}'}}]\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config), *workers], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        with pytest.raises(OSError):  # no worker left serving the port
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
