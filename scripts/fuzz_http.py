#!/usr/bin/env python3
"""A long schemathesis run against the gateway's own /openapi.json (loopback only).

Starts the demo backend in-process and a real gateway (uvicorn on 127.0.0.1, an
ephemeral port), then runs the `schemathesis` CLI on the document the gateway
serves: every phase (examples, coverage, fuzzing, stateful), the checks of
tests/test_schemathesis.py (no 5xx; documented status codes, content types,
headers and bodies), a fixed seed, bounded by --max-examples per operation and
--max-time overall. The demo backend validates its own input, so 4xx answers to
schema-valid data are not failures here. Exit status is schemathesis'.

    .venv/bin/python scripts/fuzz_http.py [--max-examples 500] [--max-time 600] [--seed 1] [--workers 2]

Add `--report-dir DIR` to keep schemathesis' JUnit/VCR reports. This module is also
the run's hooks module: it teaches schemathesis to send NDJSON request bodies.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")

try:  # registered when schemathesis imports this file as its hooks module
    import schemathesis

    @schemathesis.serializer("application/x-ndjson")
    def ndjson(context: Any, value: Any) -> bytes:
        items = value if isinstance(value, list) else [value]
        return b"".join(json.dumps(item).encode() + b"\n" for item in items)
except ImportError:  # pragma: no cover - the test extra installs it
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500, help="cases per operation and phase (1-100000)")
    parser.add_argument("--max-time", type=int, default=600, help="seconds for the whole run (10-86400)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="concurrent schemathesis workers (1-16)")
    parser.add_argument("--report-dir", type=Path, help="keep JUnit and VCR reports here")
    args = parser.parse_args(argv)
    if not (1 <= args.max_examples <= 100_000 and 10 <= args.max_time <= 86_400 and 1 <= args.workers <= 16):
        parser.error("--max-examples, --max-time or --workers out of range")

    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]
    from tests.support.backends import demo_backend_running
    from tests.support.gateway import gateway_config, running_gateway

    with demo_backend_running() as backend:
        config = gateway_config([{"name": "demo", "target": backend.target, "timeout": "5s"}],
                                access_log={"enabled": False})
        with running_gateway(config) as gw:
            command = [
                str(Path(sys.executable).with_name("schemathesis")), "run", gw.url + "/openapi.json",
                "--checks", CHECKS, "--seed", str(args.seed), "--max-examples", str(args.max_examples),
                "--max-time", str(args.max_time), "--workers", str(args.workers),
                "--phases", "examples,coverage,fuzzing,stateful", "--suppress-health-check", "all",
            ]
            if args.report_dir is not None:
                command += ["--report", "junit,vcr", "--report-dir", str(args.report_dir)]
            env = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_http",
                       PYTHONPATH=os.pathsep.join([str(ROOT / "scripts"), os.environ.get("PYTHONPATH", "")]))
            print("running:", " ".join(command), flush=True)
            status = subprocess.run(command, env=env, cwd=ROOT).returncode
        print(f"backend calls by method: {dict(backend.recorder.calls)}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
