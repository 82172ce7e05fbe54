"""schemathesis against the gateway's own /openapi.json, with the demo backends behind it.

Every generated request (schema-valid and, in the coverage phase, deliberately
invalid) must get an answer the document describes: never a 5xx, a documented
status code and content type, and a body that matches the response schema.

The demo backend validates its input itself, so 4xx answers to schema-valid
data are legitimate here (an empty shelf theme, a negative page size): the
checks that demand acceptance or rejection of data are left out. Bounded and
derandomized; `scripts/fuzz_http.py` runs the same checks far longer.
"""
from __future__ import annotations

import json
import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = int(os.environ.get("EDGE_SCHEMATHESIS_EXAMPLES", "15"))


@schemathesis.serializer("application/x-ndjson")
def ndjson(context, value) -> bytes:  # noqa: ANN001 - schemathesis' protocol
    """Client-streaming routes take one JSON message per line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def run_operations(base_url: str, examples: int, modes=tuple(schemathesis.GenerationMode)) -> dict[str, str]:
    """Every operation of the gateway's document, `examples` cases per generation mode:
    {operation label: first failure} for those that broke a check."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:
                case.call_and_validate(checks=CHECKS, timeout=10)

            try:
                check()
            except Unsatisfiable:  # e.g. no invalid value exists for a free-form path segment
                continue
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
    return failures


def test_generated_requests_get_documented_answers():
    with demo_backend_running() as backend:
        config = gateway_config([{"name": "demo", "target": backend.target, "timeout": "5s"}],
                                access_log={"enabled": False})
        with running_gateway(config) as gw:
            failures = run_operations(gw.url, EXAMPLES)
        assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
        # The run reached the backend through most routes, not just the gateway's refusals.
        assert len(backend.recorder.calls) >= 12, backend.recorder.calls
