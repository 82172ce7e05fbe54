"""The demo's browser page, served from an origin of its own.

The page (scripts/demo_page.html) calls the gateway with `fetch` from
`http://localhost:<page port>`, another origin than the gateway's
`https://localhost:<port>`, so every call is a CORS request: the demo config
allows exactly this origin. Each load of the page gets a freshly minted
development token and the gateway's address, written into the page as JSON.

A plain `http.server` on a daemon thread: it serves one page to one developer.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent / "demo_page.html"


def render(api: str, token: str) -> bytes:
    """The page with its config; `<` is escaped so no value can close the script element."""
    config = json.dumps({"api": api, "token": token}).replace("<", "\\u003c")
    return PAGE.read_text().replace("{{CONFIG}}", config).encode()


class PageServer:
    """Serves the page at `/` on `host:port` (0: any free port) until `stop()`."""

    def __init__(self, api: str, token: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the demo's terminal shows the gateway, not this
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] not in ("/", "/index.html"):
                    self.send_response(204 if self.path == "/favicon.ico" else 404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = render(api, token())
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("cache-control", "no-store")  # a fresh token on every load
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-page", daemon=True)

    def start(self) -> "PageServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
