"""Live reload with real backends: new methods appear while requests run, a
backend down at start-up joins when it comes up, a failed reload keeps the
last good routes."""
from __future__ import annotations

import threading
import time

import grpc
import httpx
from grpc_reflection.v1alpha import reflection

from edgedemo import library_pb2_grpc, users_pb2_grpc
from edgedemo.library_server import LibraryServicer
from edgedemo.serve import LIBRARY_SERVICE, USER_SERVICE
from edgedemo.users_server import UsersServicer
from tests.support.backends import LoopThread
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for


async def _start(port: int, services: list[str]) -> grpc.aio.Server:
    """A backend on a fixed port that serves (and reflects) only `services`."""
    server = grpc.aio.server()
    if USER_SERVICE in services:
        users_pb2_grpc.add_UserServiceServicer_to_server(UsersServicer(), server)
    if LIBRARY_SERVICE in services:
        library_pb2_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(), server)
    reflection.enable_server_reflection([*services, reflection.SERVICE_NAME], server)
    assert server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server



def test_reload_adds_new_method_while_requests_run(unused_port):
    loop = LoopThread()
    try:
        server = loop.run(_start(unused_port, [USER_SERVICE]))
        config = gateway_config([{"name": "demo", "target": f"127.0.0.1:{unused_port}"}])
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
            assert c.get("/v1/users/ada").status_code == 200
            assert c.get("/v1/shelves/scifi").status_code == 404
            assert not any("shelves" in p for p in c.get("/openapi.json").json()["paths"])

            # Keep requests flowing through the reload; every one must succeed.
            statuses: list[int] = []
            stop = threading.Event()

            def hammer() -> None:
                with httpx.Client(base_url=gw.url, timeout=10) as h:
                    while not stop.is_set():
                        statuses.append(h.get("/v1/users/ada").status_code)

            worker = threading.Thread(target=hammer)
            worker.start()
            try:
                # The team ships a new proto: same address, now with LibraryService too.
                loop.run(server.stop(grace=1.0))
                server = loop.run(_start(unused_port, [USER_SERVICE, LIBRARY_SERVICE]))
                generation = gw.registry.generation
                report = httpx.post(f"{gw.admin_url}/admin/reload", timeout=30).json()
                assert report["loaded"] == ["demo"] and report["rebuilt"] is True
                assert gw.registry.generation == generation + 1
                time.sleep(0.2)
            finally:
                stop.set()
                worker.join()
            assert c.get("/v1/shelves/scifi").status_code == 200
            assert any("shelves" in p for p in c.get("/openapi.json").json()["paths"])  # the new routes are documented
            assert statuses and set(statuses) <= {200, 503}, set(statuses)
            # Only the backend's own restart may cost a request; the table swap costs none.
            assert statuses.count(200) >= len(statuses) - 5

            # Reloading unchanged descriptors does not rebuild the table.
            again = httpx.post(f"{gw.admin_url}/admin/reload", timeout=30).json()
            assert again["unchanged"] == ["demo"] and again["rebuilt"] is False
        loop.run(server.stop(grace=None))
    finally:
        loop.close()


def test_backend_down_at_start_up_joins_later(unused_port):
    config = gateway_config([{"name": "late", "target": f"127.0.0.1:{unused_port}", "timeout": "1s"}])
    loop = LoopThread()
    try:
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["backends"]["late"]["last_error"]
            assert c.get("/v1/users/ada").status_code == 404

            server = loop.run(_start(unused_port, [USER_SERVICE]))
            try:
                # retry_interval is 0.2 s in tests, doubling per failure.
                assert wait_for(lambda: c.get("/readyz").status_code == 200, timeout=15)
                assert c.get("/v1/users/ada").status_code == 200
            finally:
                loop.run(server.stop(grace=None))
    finally:
        loop.close()


def test_failed_reload_keeps_last_good_routes(unused_port):
    loop = LoopThread()
    try:
        server = loop.run(_start(unused_port, [USER_SERVICE]))
        config = gateway_config([{"name": "demo", "target": f"127.0.0.1:{unused_port}", "timeout": "1s"}])
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
            assert c.get("/v1/users/ada").status_code == 200
            loop.run(server.stop(grace=None))
            report = httpx.post(f"{gw.admin_url}/admin/reload", timeout=30).json()
            assert "demo" in report["failed"] and report["rebuilt"] is False
            # Routes are still there: the call itself now fails as unavailable, not 404.
            assert c.get("/v1/users/ada").status_code == 503
            server = loop.run(_start(unused_port, [USER_SERVICE]))
            assert wait_for(lambda: c.get("/v1/users/ada").status_code == 200, timeout=15)
        loop.run(server.stop(grace=None))
    finally:
        loop.close()
