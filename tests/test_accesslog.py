"""Access log lines: fields, redaction, and what is left out by default."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from edge.observability.accesslog import (
    REDACTED,
    AccessLogConfig,
    AccessLogEntry,
    AccessLogger,
    AuthInfo,
    RateLimitInfo,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def entry(**overrides) -> AccessLogEntry:
    e = AccessLogEntry(
        request_id="req-1",
        client_ip="203.0.113.7",
        principal="alice",
        http_method="POST",
        path="/v1/shelves/7/books",
        route="/v1/shelves/{shelf}/books",
        grpc_method="edgedemo.library.v1.Library/CreateBook",
        http_status=200,
        grpc_status=0,
        bytes_in=42,
        bytes_out=99,
        auth=AuthInfo("allow", "jwt"),
        ratelimit=RateLimitInfo("per-user", 100, 99, "allow"),
        idempotency="new",
        user_agent="curl/8",
    )
    for k, v in overrides.items():
        setattr(e, k, v)
    return e


def logged(tmp_path: Path, entries, **config) -> tuple[list[dict], str]:
    """Log (entry, extras) pairs through a real logger to a file; parse the lines back."""
    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(destination=str(target), **config))
    for e, extras in entries:
        logger.log(e, **extras)
    logger.close()
    text = target.read_text()
    return [orjson.loads(line) for line in text.splitlines()], text


def test_one_line_per_call_with_every_field(tmp_path: Path) -> None:
    e = entry()
    e.set_timings(0.0125, 0.010)
    batch_item = entry(batch_id="batch-9", http_status=404, grpc_status=5)
    lines, text = logged(tmp_path, [(e, {}), (batch_item, {})])
    assert text.count("\n") == 2 and "\n " not in text
    first = lines[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["timestamp"])
    assert first == first | {
        "request_id": "req-1",
        "batch_id": None,
        "client_ip": "203.0.113.7",
        "principal": "alice",
        "http_method": "POST",
        "path": "/v1/shelves/7/books",
        "route": "/v1/shelves/{shelf}/books",
        "grpc_method": "edgedemo.library.v1.Library/CreateBook",
        "http_status": 200,
        "grpc_status": "OK",
        "bytes_in": 42,
        "bytes_out": 99,
        "duration_ms": 12.5,
        "backend_ms": 10.0,
        "gateway_ms": 2.5,
        "auth": {"decision": "allow", "reason": "jwt"},
        "ratelimit": {"policy": "per-user", "limit": 100, "remaining": 99, "decision": "allow"},
        "idempotency": "new",
        "user_agent": "curl/8",
    }
    assert lines[1]["batch_id"] == "batch-9" and lines[1]["grpc_status"] == "NOT_FOUND"
    assert not {"query", "headers", "body"} & first.keys()


def test_query_headers_and_body_are_left_out_unless_configured(tmp_path: Path) -> None:
    extras = {"query": b"q=secret", "headers": {"user-agent": "x", "authorization": f"Bearer {TOKEN}"}, "body": b'{"a":1}'}
    lines, text = logged(tmp_path, [(entry(), extras)])
    assert not {"query", "headers", "body"} & lines[0].keys()
    assert "secret" not in text and TOKEN not in text


def test_configured_redaction_of_headers_query_and_nested_body(tmp_path: Path) -> None:
    body = orjson.dumps(
        {"title": "Dune", "password": "hunter2", "owner": {"apiKey": "k-123", "tags": [{"api_key": "k-456", "ok": 1}]}}
    )
    extras = {
        "query": b"view=full&Token=abc%20def&access_token=" + TOKEN.encode() + b"&a=%C3%A9",
        "headers": {"authorization": f"Bearer {TOKEN}", "x-tenant": "t1", "x-secret": "s3", "cookie": "sid=1"},
        "body": body,
    }
    lines, text = logged(
        tmp_path,
        [(entry(), extras)],
        include_query=True,
        include_headers=["Authorization", "X-Tenant", "x-secret", "cookie"],
        include_body=True,
        redact=["token", "X-Secret", "password", "api-key"],
    )
    line = lines[0]
    assert line["headers"] == {"authorization": REDACTED, "x-tenant": "t1", "x-secret": REDACTED, "cookie": REDACTED}
    assert line["query"] == f"view=full&Token={REDACTED}&access_token={REDACTED}&a=%C3%A9"
    assert line["body"] == {
        "title": "Dune",
        "password": REDACTED,
        "owner": {"apiKey": REDACTED, "tags": [{"api_key": REDACTED, "ok": 1}]},
    }
    for secret in (TOKEN, "hunter2", "k-123", "k-456", "s3", "abc", "sid=1"):
        assert secret not in text


def test_large_and_non_json_bodies_are_summarized(tmp_path: Path) -> None:
    lines, text = logged(
        tmp_path,
        [(entry(), {"body": b"password=hunter2"}), (entry(), {"body": b'{"x":"' + b"y" * 100 + b'"}'})],
        include_body=True,
        max_body_bytes=64,
    )
    assert lines[0]["body"] == "<16 bytes, not JSON>"
    assert lines[1]["body"] == "<108 bytes, over the 64-byte log limit>"
    assert "hunter2" not in text


def test_sampling_keeps_every_error(tmp_path: Path) -> None:
    entries = [(entry(), {}) for _ in range(50)] + [(entry(http_status=503, grpc_status=14), {}) for _ in range(5)]
    lines, _ = logged(tmp_path, entries, sample=0.0)
    assert [line["grpc_status"] for line in lines] == ["UNAVAILABLE"] * 5


def test_disabled_logs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(enabled=False, destination=str(target)))
    logger.log(entry())
    logger.close()
    assert not target.exists()


def test_config_rejects_unknown_keys_and_missing_directories(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="include_querystring"):
        AccessLogConfig(include_querystring=True)
    with pytest.raises(ValidationError, match="does not exist"):
        AccessLogConfig(destination=str(tmp_path / "nope" / "access.log"))


def test_stdout_gets_whole_lines_from_a_real_process() -> None:
    script = textwrap.dedent(
        """
        from edge.observability.accesslog import AccessLogConfig, AccessLogEntry, AccessLogger
        logger = AccessLogger(AccessLogConfig())
        for i in range(2000):
            logger.log(AccessLogEntry(request_id=f"r{i}", http_method="GET", path="/v1/x", http_status=200))
        logger.close()
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=60).stdout
    ids = [orjson.loads(line)["request_id"] for line in out.splitlines()]
    assert ids == [f"r{i}" for i in range(2000)]


def test_lines_logged_outside_an_event_loop_are_written_at_once(tmp_path: Path) -> None:
    """No loop to flush later (scripts, tools): each line goes straight to the file, in order."""
    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(destination=str(target)))
    for i in range(500):
        logger.log(entry(request_id=f"r{i}"))
        if i == 0:
            assert _ids(target) == ["r0"]
    assert _ids(target) == [f"r{i}" for i in range(500)]
    logger.close()
    assert logger.dropped == 0


def test_timestamps_are_rfc3339_utc_milliseconds() -> None:
    from edge.observability.accesslog import utc_timestamp

    assert utc_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert utc_timestamp(1714564800.123) == "2024-05-01T12:00:00.123Z"
    assert utc_timestamp(1714564800.9999) == "2024-05-01T12:00:00.999Z"
    assert utc_timestamp(1714564801.0) == "2024-05-01T12:00:01.000Z"


def _ids(path: Path) -> list[str]:
    return [orjson.loads(line)["request_id"] for line in path.read_bytes().splitlines()]


def test_a_file_gets_the_lines_in_batches_from_the_event_loop(tmp_path: Path) -> None:
    """Buffered while the loop runs, written whole and in order within the flush interval."""
    import asyncio

    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(destination=str(target)))

    async def serve() -> tuple[list[str], list[str]]:
        for i in range(200):  # ~100 KiB: under the buffer size
            logger.log(entry(request_id=f"r{i}"))
        before = _ids(target)
        await asyncio.sleep(0.2)
        return before, _ids(target)

    before, after = asyncio.run(serve())
    assert before == []  # nothing written while the loop was busy: one batch later
    assert after == [f"r{i}" for i in range(200)]
    logger.close()


def test_lines_left_by_a_closed_loop_are_written_by_the_next_one_and_at_close(tmp_path: Path) -> None:
    import asyncio

    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(destination=str(target)))

    async def log(i: int) -> None:
        logger.log(entry(request_id=f"r{i}"))

    asyncio.run(log(0))  # the loop ends before its flush timer fires
    asyncio.run(log(1))  # a new loop must schedule its own flush, not wait on the dead one's

    async def log_and_wait() -> None:
        logger.log(entry(request_id="r2"))
        await asyncio.sleep(0.2)

    asyncio.run(log_and_wait())
    assert _ids(target) == ["r0", "r1", "r2"]
    asyncio.run(log(3))
    logger.close()
    assert _ids(target) == ["r0", "r1", "r2", "r3"]


def test_a_burst_over_the_buffer_size_is_written_at_once(tmp_path: Path) -> None:
    import asyncio

    target = tmp_path / "access.log"
    logger = AccessLogger(AccessLogConfig(destination=str(target)))

    async def burst() -> int:
        for i in range(3000):  # ~1 MiB of lines: several 256 KiB writes, no wait for the timer
            logger.log(entry(request_id=f"r{i}"))
        return len(_ids(target))

    written = asyncio.run(burst())
    assert 2000 < written < 3000
    logger.close()
    assert _ids(target) == [f"r{i}" for i in range(3000)]
