"""A real Envoy with its gRPC-JSON transcoder in front of a backend, for differential tests.

Envoy is not a project dependency: `envoy_binary()` finds one ($EDGE_TEST_ENVOY,
`envoy` on PATH, or the one scripts/bench installs into its cache) and tests skip
without it. The transcoder runs with Envoy's default settings (no print_options, no
request_validation_options), the configuration the `envoy` profile claims to match.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from scripts.bench_envoy import envoy_config

__all__ = ["envoy_binary", "envoy_transcoder_running"]

_BENCH_ENVOY = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-bench" / "envoy-venv" / "bin" / "envoy"


def envoy_binary() -> str | None:
    for candidate in (os.environ.get("EDGE_TEST_ENVOY"), shutil.which("envoy"), str(_BENCH_ENVOY)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def envoy_transcoder_running(
    binary: str, descriptor_set: Path, services: list[str], backend_port: int, options: dict | None = None,
) -> Iterator[str]:
    """Envoy transcoding to the backend at 127.0.0.1:`backend_port`; yields its base URL.
    `options` are more GrpcJsonTranscoder fields (Envoy's names), on top of its defaults."""
    port = _free_port()
    config = envoy_config(port, backend_port, descriptor_set)
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = manager["http_filters"][0]["typed_config"]
    transcoder["services"] = services
    transcoder.pop("print_options", None)  # Envoy's defaults
    transcoder.update(options or {})
    with tempfile.TemporaryDirectory(prefix="edge-envoy-") as work:
        path = Path(work) / "envoy.json"
        path.write_text(json.dumps(config))
        log = (Path(work) / "envoy.log").open("wb")
        proc = subprocess.Popen(
            [binary, "-c", str(path), "--concurrency", "1", "--log-level", "error", "--use-dynamic-base-id"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"envoy exited with {proc.returncode}: {(Path(work) / 'envoy.log').read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("envoy did not listen within 30s")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
