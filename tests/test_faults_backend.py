"""Faults behind the gateway, with real processes: a backend killed mid-request and
mid-stream, restarted on the same port, hung (SIGSTOP), answering slower than the
deadline, and serving a broken descriptor on reload. The gateway must answer
clearly (503, a final error line, 504), stay up, cancel what it gave up on, and
recover without a restart.
"""
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

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

from edgedemo import library_pb2_grpc
from edgedemo.library_server import LibraryServicer
from edgedemo.serve import LIBRARY_SERVICE
from tests.support.backends import DEMO_DESCRIPTOR_SET, LoopThread
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
DELAY = "x-demo-delay-ms"


class BackendProcess:
    """`python -m edgedemo.serve` on a fixed port, to kill, stop and restart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "BackendProcess":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "protos"), str(ROOT)]))
        self.proc = subprocess.Popen([sys.executable, "-m", "edgedemo.serve", "--port", str(self.port)], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()  # printed once it serves
        assert "edgedemo" in line, line
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def backend_process(unused_port):
    backend = BackendProcess(unused_port).start()
    try:
        yield backend
    finally:
        backend.kill()


def _gateway(target: str, **backend):
    return gateway_config([{"name": "demo", "target": target, "timeout": "5s", "max_timeout": "30s", **backend}],
                          transcoding={"forward_headers": [DELAY], "reload_interval": 0, "retry_interval": 0.2},
                          access_log={"enabled": False})



def _in_thread(fn):
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


# ---- killed and restarted -------------------------------------------------------------------


def test_backend_killed_mid_request_then_restarted_on_the_same_port(backend_process):
    with running_gateway(_gateway(backend_process.target)) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        assert c.get("/v1/shelves/scifi").status_code == 200
        thread, box = _in_thread(lambda: c.get("/v1/shelves/scifi", headers={DELAY: "10000"}))
        time.sleep(0.5)  # the call is in the backend, sleeping
        killed_at = time.monotonic()
        backend_process.kill()
        thread.join(20)
        answer = box["result"]
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == 14
        assert time.monotonic() - killed_at < 5  # answered when the connection broke, not at the deadline

        # The gateway stays up and answers every call to the dead backend at once.
        assert c.get("/healthz").status_code == 200
        for _ in range(3):
            started = time.monotonic()
            down = c.get("/v1/shelves/scifi")
            assert down.status_code == 503 and down.json()["code"] == 14
            assert time.monotonic() - started < 2
        assert c.get("/v1/nothing").status_code == 404  # routes are kept

        # Same port, new process: the same channel reconnects; no gateway restart.
        backend_process.start()
        assert wait_for(lambda: c.get("/v1/shelves/scifi").status_code == 200, timeout=20, interval=0.1)


def test_backend_killed_mid_stream_ends_the_stream_with_an_error_line(backend_process):
    with running_gateway(_gateway(backend_process.target)) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        lines = []
        with c.stream("GET", "/v1/shelves/scifi/books:stream", params={"delayMs": 400}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line:
                    lines.append(json.loads(line))
                    if len(lines) == 1:
                        backend_process.kill()
        assert "name" in lines[0]
        assert lines[-1]["error"]["code"] == 14, lines  # UNAVAILABLE, as the stream's last line
        assert all("name" in line for line in lines[:-1])
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/shelves/scifi").status_code == 503


def test_backend_down_before_a_stream_starts_is_a_503(backend_process):
    with running_gateway(_gateway(backend_process.target)) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        backend_process.kill()
        with c.stream("GET", "/v1/shelves/scifi/books:stream") as r:
            r.read()
        assert r.status_code == 503 and r.json()["code"] == 14


# ---- hung and slow ------------------------------------------------------------------------


def test_hung_backend_process_is_a_504_at_the_deadline(backend_process):
    with running_gateway(_gateway(backend_process.target, timeout="1s")) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        assert c.get("/v1/shelves/scifi").status_code == 200
        backend_process.pause()  # connections stay open, nothing answers
        try:
            started = time.monotonic()
            r = c.get("/v1/shelves/scifi", headers={"grpc-timeout": "300m"})
            assert r.status_code == 504 and r.json()["code"] == 4
            r = c.get("/v1/shelves/scifi")  # the backend's own timeout, 1 s
            assert r.status_code == 504
            assert time.monotonic() - started < 10
            assert c.get("/healthz").status_code == 200
        finally:
            backend_process.resume()
        assert wait_for(lambda: c.get("/v1/shelves/scifi").status_code == 200, timeout=20, interval=0.1)


def test_slow_call_is_cancelled_at_the_deadline(demo_backend):
    """The demo backend sleeps past the deadline: 504 for the client, and the backend sees
    its call cancelled instead of finishing it for no one."""
    with running_gateway(_gateway(demo_backend.target)) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        r = c.get("/v1/shelves/scifi", headers={DELAY: "5000", "grpc-timeout": "300m"})
        assert r.status_code == 504 and r.json()["code"] == 4
        assert demo_backend.recorder.wait_for("GetShelf", finished=True, timeout=5)
        assert demo_backend.recorder.cancelled["GetShelf"] == 1
        with c.stream("GET", "/v1/shelves/scifi/books:stream", params={"delayMs": 5000},
                      headers={"grpc-timeout": "300m"}) as stream:
            stream.read()
        assert stream.status_code == 504
        assert demo_backend.recorder.wait_for("StreamBooks", finished=True, timeout=5)
        assert demo_backend.recorder.cancelled["StreamBooks"] == 1


def test_client_gone_mid_stream_cancels_the_backend_stream(demo_backend):
    """A stream nobody reads any more is cancelled at the backend at once. (A unary call whose
    client left runs on to its end or its deadline, so that its outcome can be stored for an
    idempotent retry: see test_no_lost_work.py.)"""
    with running_gateway(_gateway(demo_backend.target)) as gw:
        with socket.create_connection(("127.0.0.1", gw.server.public.port)) as sock:
            sock.sendall(b"GET /v1/shelves/scifi/books:stream?delayMs=300 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the first book arrived
        started = time.monotonic()
        assert demo_backend.recorder.wait_for("StreamBooks", finished=True, timeout=5)
        assert demo_backend.recorder.cancelled["StreamBooks"] == 1
        assert time.monotonic() - started < 3  # well before the shelf's four books were streamed


# ---- a broken descriptor on reload -----------------------------------------------------------


class SwitchableReflection:
    """Server reflection (v1 and v1alpha) serving the demo's descriptors, or, once
    `broken` is set, a broken answer of the test's choosing."""

    def __init__(self) -> None:
        files = descriptor_pb2.FileDescriptorSet.FromString(DEMO_DESCRIPTOR_SET.read_bytes()).file
        self.files = {f.name: f for f in files}
        self.pool = descriptor_pool.DescriptorPool()
        for f in files:
            self.pool.Add(f)
        self.broken: str | None = None

    def _file_answer(self, name: str) -> reflection_pb2.ServerReflectionResponse:
        out = reflection_pb2.ServerReflectionResponse()
        if self.broken == "garbage":
            out.file_descriptor_response.file_descriptor_proto.append(b"\xff\x00not a descriptor\x12")
        elif self.broken == "error":
            out.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
            out.error_response.error_message = "no such file"
        elif self.broken == "dangling type":
            proto = descriptor_pb2.FileDescriptorProto()
            proto.CopyFrom(self.files[name])
            for message in proto.message_type:
                for field in message.field:
                    if field.type_name:
                        field.type_name = ".edgedemo.missing.Nothing"
            out.file_descriptor_response.file_descriptor_proto.append(proto.SerializeToString())
        elif self.broken == "missing import":
            proto = descriptor_pb2.FileDescriptorProto()
            proto.CopyFrom(self.files[name])
            proto.dependency.append("edgedemo/not_there.proto")
            out.file_descriptor_response.file_descriptor_proto.append(proto.SerializeToString())
        elif self.broken == "no service":
            proto = descriptor_pb2.FileDescriptorProto()
            proto.CopyFrom(self.files[name])
            del proto.service[:]
            out.file_descriptor_response.file_descriptor_proto.append(proto.SerializeToString())
        else:
            out.file_descriptor_response.file_descriptor_proto.append(self.files[name].SerializeToString())
        return out

    async def info(self, requests, context):  # noqa: ANN001 - grpc handler
        async for request in requests:
            if request.HasField("list_services"):
                answer = reflection_pb2.ServerReflectionResponse()
                answer.list_services_response.service.add(name=LIBRARY_SERVICE)
            elif request.HasField("file_containing_symbol"):
                answer = self._file_answer(self.pool.FindFileContainingSymbol(request.file_containing_symbol).name)
            elif request.file_by_filename in self.files or self.broken == "error":
                answer = self._file_answer(request.file_by_filename)
            else:
                answer = reflection_pb2.ServerReflectionResponse()
                answer.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
            yield answer

    def register(self, server: grpc.aio.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            self.info, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
        for service in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"):
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),))


@pytest.fixture
def switchable_backend():
    loop = LoopThread()
    reflection = SwitchableReflection()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        library_pb2_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(), server)
        reflection.register(server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(start())
    try:
        yield f"127.0.0.1:{port}", reflection
    finally:
        loop.run(server.stop(None))
        loop.close()


@pytest.mark.parametrize("broken", ["garbage", "error", "dangling type", "missing import", "no service"])
def test_broken_descriptor_on_reload_keeps_the_old_routes(switchable_backend, broken):
    target, reflection = switchable_backend
    with running_gateway(_gateway(target)) as gw, httpx.Client(base_url=gw.url, timeout=30) as c:
        assert c.get("/v1/shelves/scifi").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        generation = gw.registry.generation
        reflection.broken = broken
        report = httpx.post(f"{gw.admin_url}/admin/reload", timeout=30).json()
        assert "demo" in report["failed"] and report["rebuilt"] is False, report
        assert gw.registry.generation == generation
        # The last good routes still serve, and the document still lists them.
        assert c.get("/v1/shelves/scifi").status_code == 200
        assert c.post("/v1/shelves", json={"theme": "kept"}).status_code == 200
        assert c.get("/openapi.json").json()["paths"] == paths
        assert gw.registry.status()["demo"]["last_error"]
        reflection.broken = None
        report = httpx.post(f"{gw.admin_url}/admin/reload", timeout=30).json()
        assert report["unchanged"] == ["demo"] and not report["failed"], report
