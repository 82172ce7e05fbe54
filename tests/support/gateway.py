"""A real gateway (uvicorn on ephemeral ports) running on its own event-loop thread."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Coroutine, Iterator

from edge.config import GatewayConfig
from edge.server import GatewayServer


class RunningGateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop", daemon=True)
        self.server: GatewayServer | None = None

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> "RunningGateway":
        self.thread.start()

        async def _start() -> GatewayServer:
            server = GatewayServer(self.config, host="127.0.0.1", port=0)
            await server.start()
            return server

        self.server = self.run(_start())
        return self

    @property
    def registry(self):
        assert self.server is not None
        return self.server.registry

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.config.listen.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.public.port}"

    @property
    def admin_url(self) -> str:
        assert self.server is not None and self.server.admin is not None
        return f"http://127.0.0.1:{self.server.admin.port}"

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.run(self.server.stop(), timeout=40)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def gateway_config(backends: list[dict[str, Any]], **sections: Any) -> GatewayConfig:
    """A test config: plaintext listener, admin on an ephemeral port, no scheduled reloads."""
    raw: dict[str, Any] = {
        "listen": {"plaintext": True, "port": 0},
        "admin": {"port": 0},
        "backends": backends,
        "transcoding": {"reload_interval": 0, "retry_interval": 0.2},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return GatewayConfig.model_validate(raw)


@contextlib.contextmanager
def running_gateway(config: GatewayConfig) -> Iterator[RunningGateway]:
    gw = RunningGateway(config).start()
    try:
        yield gw
    finally:
        gw.stop()
