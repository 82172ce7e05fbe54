"""The gRPC -> HTTP status table in transcoding/status.py, held against its two sources.

google-api-core's exception classes carry the mapping as data (`grpc_status_code`
and `code` per class); google/rpc/code.proto, shipped in googleapis-common-protos,
states it in a comment on every code ("HTTP Mapping: 404 Not Found"). The table
must agree with api-core on every code api-core maps, differ only on the rows it
documents, and agree with code.proto on all of them.
"""
from __future__ import annotations

import re
from pathlib import Path

import google.rpc
import grpc
import pytest
from google.api_core import exceptions as api_exceptions

from transcoding.status import CODE_BY_NUMBER, HTTP_STATUS, http_status_for

# The rows where api-core has no HTTP code and the table supplies code.proto's.
BEYOND_API_CORE = {grpc.StatusCode.OK: 200, grpc.StatusCode.UNKNOWN: 500, grpc.StatusCode.DATA_LOSS: 500}


def _api_core_http(code: grpc.StatusCode) -> int | None:
    cls = api_exceptions.exception_class_for_grpc_status(code)
    if getattr(cls, "grpc_status_code", None) is not code:
        return None  # no class of its own (OK falls back to the base class)
    http = cls.code
    return http if isinstance(http, int) else None


def _code_proto_http() -> dict[str, int]:
    text = (Path(next(iter(google.rpc.__path__))) / "code.proto").read_text()
    found = dict((name, int(status)) for status, name in
                 re.findall(r"HTTP Mapping: (\d{3})[^\n]*\n\s*([A-Z_]+) = \d+;", text))
    assert len(found) == len(grpc.StatusCode), f"code.proto mappings not all found: {sorted(found)}"
    return found


def test_the_table_has_one_row_per_grpc_code():
    assert list(HTTP_STATUS) == list(grpc.StatusCode)  # written in code order, none missing
    assert sorted(CODE_BY_NUMBER) == list(range(17))
    assert all(CODE_BY_NUMBER[c.value[0]] is c for c in grpc.StatusCode)


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_each_row_agrees_with_google_api_core(code):
    theirs = _api_core_http(code)
    if code in BEYOND_API_CORE:
        assert theirs is None, f"api-core now maps {code.name}; drop it from the documented differences"
        assert HTTP_STATUS[code] == BEYOND_API_CORE[code]
    else:
        assert theirs is not None
        assert HTTP_STATUS[code] == theirs
    # and through api-core's own constructor, the way a client library meets the code
    if theirs is not None:
        assert api_exceptions.from_grpc_status(code, "m").code == HTTP_STATUS[code]


def test_every_row_agrees_with_code_proto():
    proto = _code_proto_http()
    assert {c.name: HTTP_STATUS[c] for c in grpc.StatusCode} == proto


def test_the_lookup_reads_the_table():
    assert http_status_for(grpc.StatusCode.NOT_FOUND) == 404
    assert http_status_for(grpc.StatusCode.CANCELLED) == 499
    assert http_status_for(grpc.StatusCode.DATA_LOSS) == 500
