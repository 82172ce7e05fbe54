"""Hostile request bodies and header values through a real gateway in front of the
real demo backend: malformed, truncated and non-UTF-8 JSON, nesting 10,000 deep,
numbers out of range, duplicate keys -- alone and inside a batch. Every one is a
4xx naming the problem (never a 500), and the backend is never called for it.
"""
from __future__ import annotations

import json

import httpx
import pytest

from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway

BOOKS = "/v1/shelves/scifi/books"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def stack():
    with demo_backend_running() as backend:
        config = gateway_config([{"name": "demo", "target": backend.target}],
                                transcoding={"forward_headers": ["x-demo-delay-ms", "x-client-tag"]},
                                access_log={"enabled": False})
        with running_gateway(config) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as client:
            yield client, backend


@pytest.fixture
def client(stack):
    stack[1].recorder.reset()
    return stack[0]


@pytest.fixture
def recorder(stack):
    return stack[1].recorder


def refused(r: httpx.Response, status: int = 400, *words: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"}, body
    for word in words:
        assert word in body["message"], body
    return body


def batch(client: httpx.Client, body: bytes | dict) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/batch", content=content, headers=JSON)


def item(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    [answer] = r.json()["responses"]
    return answer


# ---- malformed, truncated, not UTF-8 -------------------------------------------------------

MALFORMED = [
    b'{"title": ',
    b'{"title": "Dune"',
    b'{"title": "Dune",}',
    b"{'title': 'Dune'}",
    b'{"title": "Dune"} trailing',
    b'{"title": "Du\x00ne"}',
    b"[1, 2",
    b'{"title": "\\x41"}',
    b'{"pageCount": 01}',
    b'{"pageCount": NaN}',
    b'{"pageCount": -Infinity}',
    b"\xef\xbb\xbf{}",  # a BOM
]


@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: repr(b)[:40])
def test_malformed_and_truncated_json(client, recorder, body):
    refused(client.post(BOOKS, content=body, headers=JSON), 400, "JSON")
    assert recorder.calls["CreateBook"] == 0


@pytest.mark.parametrize("body, offset", [(b'{"title": "\xff"}', 11), (b'{"title": "\xc3"}', 11), (b'\xed\xa0\x80', 0)])
def test_invalid_utf8_names_the_byte(client, recorder, body, offset):
    refused(client.post(BOOKS, content=body, headers=JSON), 400, "not valid UTF-8", f"byte {offset}")
    assert recorder.calls["CreateBook"] == 0


def test_lone_surrogate_escape_names_the_field(client, recorder):
    refused(client.post(BOOKS, content=b'{"title": "\\ud800"}', headers=JSON), 400, "book.title")
    assert recorder.calls["CreateBook"] == 0


# ---- nesting -------------------------------------------------------------------------------

DEEP = 10_000


@pytest.mark.parametrize("url, body", [
    (BOOKS, b'{"title": "x", "tags": ' + b"[" * DEEP + b"]" * DEEP + b"}"),  # body field
    (BOOKS, b'{"a": ' * DEEP + b"1" + b"}" * DEEP),
    (BOOKS, b"[" * DEEP + b"]" * DEEP),
    (BOOKS, b"[" * DEEP),  # truncated as well
    ("/v1/shelves/scifi/books/1:move", b'{"name": ' + b"[" * DEEP + b"]" * DEEP + b"}"),  # body "*"
])
def test_ten_thousand_levels(client, recorder, url, body):
    refused(client.post(url, content=body, headers=JSON), 400, "nested too deeply")
    assert sum(recorder.calls.values()) == 0


def test_ten_thousand_levels_in_an_ndjson_line(client, recorder):
    body = b'{"book": {"title": "ok"}}\n{"book": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"
    r = client.post("/v1/shelves/scifi/books:import", content=body, headers={"content-type": "application/x-ndjson"})
    refused(r, 400, "line 2", "nested too deeply")
    assert recorder.calls["ImportBooks"] == 0


def test_ten_thousand_levels_in_a_batch(client, recorder):
    refused(batch(client, b'{"requests": ' + b"[" * DEEP + b"]" * DEEP + b"}"), 400)
    deep_item = b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves", "body": ' + b"[" * DEEP + b"]" * DEEP + b"}]}"
    refused(batch(client, deep_item), 400)
    assert sum(recorder.calls.values()) == 0


@pytest.mark.parametrize("depth", [150, 500, 900])
def test_a_batch_item_body_nested_hundreds_deep_is_a_400_not_a_500(client, recorder, depth):
    """Deep enough for a recursive walk to blow the stack, shallow enough for the JSON parser."""
    body = b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves", "body": {"theme": ' + b"[" * depth + b"]" * depth + b"}}]}"
    refused(batch(client, body), 400, "requests[0].body", "nested")
    assert sum(recorder.calls.values()) == 0


# ---- numbers -------------------------------------------------------------------------------

# A number the field cannot hold is refused naming the field; one too long for Python's
# int conversion (over 4300 digits) is already refused by the JSON parser, naming the digits.
TOO_MANY_DIGITS = "1" + "0" * 5000


@pytest.mark.parametrize("field, value", [
    ("pageCount", "2147483648"), ("pageCount", "-2147483649"), ("pageCount", '"2147483648"'), ("pageCount", "1e10"),
    ("pageCount", "1.5"), ("pageCount", "1e400"), ("pageCount", TOO_MANY_DIGITS), ("pageCount", "true"),
    ("priceCents", "9223372036854775808"), ("priceCents", '"9223372036854775808"'), ("priceCents", "-9223372036854775809"),
    ("priceCents", "1e19"), ("priceCents", '"0x10"'), ("priceCents", '"1 000"'),
])
def test_numbers_out_of_range(client, recorder, field, value):
    body = b'{"title": "x", "%s": %s}' % (field.encode(), value.encode())
    message = refused(client.post(BOOKS, content=body, headers=JSON), 400)["message"]
    if value == TOO_MANY_DIGITS:
        assert message.startswith("malformed JSON body:") and "digits" in message, message
    else:
        assert f"{field}'" in message, message  # the field, quoted, as the client spelled it
    assert recorder.calls["CreateBook"] == 0


def test_numbers_at_the_edges_are_accepted(client, recorder):
    body = {"title": "edges", "pageCount": 2147483647, "priceCents": "9223372036854775807"}
    r = client.post(BOOKS, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["pageCount"] == 2147483647 and r.json()["priceCents"] == "9223372036854775807"
    # The smallest values pass the gateway exactly; the demo backend refuses negatives itself.
    r = client.post(BOOKS, json={"title": "neg", "priceCents": -9223372036854775808})
    assert r.status_code == 400 and "-9223372036854775808" in r.json()["message"]
    assert recorder.calls["CreateBook"] == 2


@pytest.mark.parametrize("value", ["2147483648", "-2147483649", "99999999999999999999", "1e3", "0x10", " 1"])
def test_query_numbers_out_of_range(client, recorder, value):
    refused(client.get(BOOKS, params={"pageSize": value}), 400, "pageSize")
    assert recorder.calls["ListBooks"] == 0


def test_numbers_out_of_range_in_a_batch_item(client, recorder):
    r = batch(client, b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves/scifi/books",'
                      b' "body": {"title": "x", "priceCents": 99999999999999999999}}]}')
    answer = item(r)
    assert answer["status"] == 400 and "priceCents" in answer["body"]["message"]
    refused(batch(client, b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves/scifi/books",'
                          b' "body": {"title": "x", "pageCount": 1e400}}]}'), 400)
    assert recorder.calls["CreateBook"] == 0


# ---- duplicate keys ------------------------------------------------------------------------

@pytest.mark.parametrize("body, key", [
    (b'{"title": "a", "title": "b"}', "title"),
    (b'{"title": "a", "tags": ["x"], "author": "p", "tags": []}', "tags"),
    (b'{"title": "a", "publishTime": "2020-01-01T00:00:00Z", "publishTime": "2021-01-01T00:00:00Z"}', "publishTime"),
])
def test_duplicate_keys_are_refused(client, recorder, body, key):
    refused(client.post(BOOKS, content=body, headers=JSON), 400, "duplicate key", key)
    assert recorder.calls["CreateBook"] == 0


def test_duplicate_keys_in_a_batch_are_refused_like_alone(client, recorder):
    """A batch is parsed by the same JSON rules as a call alone: a key given twice is a 400
    (orjson would silently keep the last one, so an item could say one thing to whoever
    inspects the first key and another to the backend)."""
    in_item = (b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves",'
               b' "body": {"theme": "inspected", "theme": "sent"}}]}')
    refused(batch(client, in_item), 400, "duplicate key", "theme")
    in_document = b'{"requests": [{"id": "a", "url": "/v1/shelves/scifi", "url": "/v1/shelves/history"}]}'
    refused(batch(client, in_document), 400, "duplicate key", "url")
    refused(batch(client, b'{"requests": [], "requests": [{"id": "a", "url": "/v1/shelves/scifi"}]}'), 400, "duplicate key")
    assert sum(recorder.calls.values()) == 0


def test_batch_body_that_is_not_utf8(client, recorder):
    refused(batch(client, b'{"requests": [{"id": "a", "url": "/v1/shelves/\xff"}]}'), 400, "UTF-8")
    assert sum(recorder.calls.values()) == 0


def test_a_lone_surrogate_in_a_batch_item_body_is_the_items_400(client, recorder):
    r = batch(client, b'{"requests": [{"id": "a", "method": "POST", "url": "/v1/shelves", "body": {"theme": "\\ud800"}}]}')
    answer = item(r)
    assert answer["status"] == 400 and "shelf.theme" in answer["body"]["message"]
    assert recorder.calls["CreateShelf"] == 0


# ---- header values a backend cannot be sent ------------------------------------------------

def test_forwarded_header_that_grpc_metadata_cannot_carry_is_a_400(client, recorder):
    for value in ("caf\xe9".encode("latin-1"), b"a\tb", "\u00e9".encode()):
        refused(client.get("/v1/shelves/scifi", headers={"x-client-tag": value}), 400, "x-client-tag")
    assert client.get("/v1/shelves/scifi", headers={"x-client-tag": "plain ascii, ok"}).status_code == 200
    assert recorder.calls["GetShelf"] == 1
    assert recorder.last("GetShelf").header("x-client-tag") == "plain ascii, ok"


def test_forwarded_header_in_a_batch_item_that_grpc_metadata_cannot_carry(client, recorder):
    answer = item(batch(client, {"requests": [{"id": "a", "url": "/v1/shelves/scifi", "headers": {"x-demo-delay-ms": "\u00e9"}}]}))
    assert answer["status"] == 400 and "x-demo-delay-ms" in answer["body"]["message"]
    assert recorder.calls["GetShelf"] == 0


# ---- whitespace, one field twice, streams ---------------------------------------------------

@pytest.mark.parametrize("body", [b" ", b"\n", b"\r\n\t  ", b"\n" * 10_000])
def test_a_body_of_only_whitespace_is_refused(client, recorder, body):
    """Envoy's answer (grpc-gateway reads an empty message; its profile does too)."""
    refused(client.post(BOOKS, content=body, headers=JSON), 400, "only whitespace")
    refused(client.post("/v1/shelves/scifi/books:import", content=body), 400, "only whitespace")
    assert sum(recorder.calls.values()) == 0


@pytest.mark.parametrize("body, field", [
    (b'{"title": "a", "pageCount": 1, "page_count": 2}', "book.page_count"),
    (b'{"title": "a", "price_cents": "1", "priceCents": "1"}', "book.priceCents"),
    (b'{"title": "a", "publish_time": "2020-01-01T00:00:00Z", "publishTime": "2021-01-01T00:00:00Z"}', "book.publishTime"),
    (b'{"title": "a", "readDuration": "1s", "read_duration": null}', "book.read_duration"),
])
def test_one_field_under_both_spellings_is_refused(client, recorder, body, field):
    """What a WAF or log reading the first spelling sees is not what the backend would get."""
    body_json = refused(client.post(BOOKS, content=body, headers=JSON), 400, "twice", field)
    assert body_json["details"][0]["fieldViolations"][0]["field"] == field
    answer = item(batch(client, b'{"requests": [{"id": "a", "method": "POST", "url": "%s", "body": %s}]}'
                        % (BOOKS.encode(), body)))
    assert answer["status"] == 400 and field in answer["body"]["message"]
    assert recorder.calls["CreateBook"] == 0


def test_ten_thousand_levels_in_a_json_array_stream(client, recorder):
    body = b'[{"book": {"title": "ok"}}, {"book": ' + b"[" * DEEP + b"]" * DEEP + b"}]"
    refused(client.post("/v1/shelves/scifi/books:import", content=body, headers=JSON), 400, "nested too deeply")
    assert recorder.calls["ImportBooks"] == 0


def test_a_bad_element_of_a_json_array_stream_refuses_the_whole_stream(client, recorder):
    body = b'[{"book": {"title": "ok"}}, {"book": {"title": "no", "pageCount": "many"}}]'
    answer = refused(client.post("/v1/shelves/scifi/books:import", content=body, headers=JSON), 400,
                     "element 1 of the JSON array body")
    assert answer["details"][0]["fieldViolations"][0]["field"] == "book.pageCount"
    assert recorder.calls["ImportBooks"] == 0  # no half of a stream reaches the backend
