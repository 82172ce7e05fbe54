"""End to end: real demo gRPC backends with reflection, a real gateway on
uvicorn, driven over HTTP with httpx. One test per rule kind and error class."""
from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.support.gateway import gateway_config, running_gateway

LIB = "/edgedemo.library.v1.LibraryService"


@pytest.fixture
def gw(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target, "timeout": "5s", "max_timeout": "10s"}])
    with running_gateway(config) as gateway:
        yield gateway


@pytest.fixture
def client(gw):
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def test_get_with_path_variable(client):
    r = client.get("/v1/shelves/scifi")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["name"] == "shelves/scifi"
    assert "createTime" in r.json()  # lowerCamelCase out


def test_list_with_query_pagination(client):
    first = client.get("/v1/shelves/scifi/books", params={"pageSize": 1})
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["books"]) == 1 and body["nextPageToken"]
    second = client.get("/v1/shelves/scifi/books", params={"page_size": 1, "pageToken": body["nextPageToken"]})
    assert second.status_code == 200, second.text
    assert second.json()["books"][0]["name"] != body["books"][0]["name"]


def test_post_body_field_then_get(client):
    r = client.post("/v1/shelves/scifi/books", json={"title": "Dune", "author": "Frank Herbert", "priceCents": "1299"})
    assert r.status_code == 200, r.text
    book = r.json()
    assert book["title"] == "Dune" and book["priceCents"] == "1299"  # int64 as string
    again = client.get(f"/v1/{book['name']}")
    assert again.status_code == 200 and again.json()["title"] == "Dune"


def test_patch_with_field_mask_in_query(client):
    created = client.post("/v1/shelves/scifi/books", json={"title": "Old", "author": "A"}).json()
    r = client.patch(
        f"/v1/{created['name']}", params={"updateMask": "title"}, json={"title": "New", "author": "ignored by mask"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "New" and r.json()["author"] == "A"


@pytest.mark.parametrize("transcoding_profile,author", [("edge", "A"), ("grpc-gateway", "A"), ("envoy", "")])
def test_patch_without_a_mask_changes_only_what_the_body_sent(demo_backend, transcoding_profile, author):
    """grpc-gateway's PATCH feature (the edge default too): the mask is the body's fields, so the
    author the client did not send survives. Under the envoy profile the backend gets no mask and
    the demo, as its proto says, replaces every mutable field: the author is gone."""
    config = gateway_config([{"name": "demo", "target": demo_backend.target, "timeout": "5s"}],
                            transcoding={"profile": transcoding_profile})
    with running_gateway(config) as gateway, httpx.Client(base_url=gateway.url, timeout=10) as c:
        created = c.post("/v1/shelves/scifi/books", json={"title": "Old", "author": "A"}).json()
        r = c.patch(f"/v1/{created['name']}", json={"title": "New"})
        assert r.status_code == 200, r.text
        assert r.json()["title"] == "New" and r.json().get("author", "") == author
        assert c.patch(f"/v1/{created['name']}", json={"title": "x", "subtitle": "y"}).status_code == (
            400 if transcoding_profile != "envoy" else 200)


def test_custom_verb_body_star(client, demo_backend):
    created = client.post("/v1/shelves/scifi/books", json={"title": "Mover"}).json()
    r = client.post(f"/v1/{created['name']}:move", json={"otherShelfName": "shelves/history"})
    assert r.status_code == 200, r.text
    assert r.json()["name"].startswith("shelves/history/books/")
    assert demo_backend.recorder.calls["MoveBook"] == 1


def test_verb_route_beside_variable_route(client):
    r = client.get("/v1/books:search", params={"q": "le guin"})
    assert r.status_code == 200, r.text
    assert [b["name"] for b in r.json()["books"]] == [
        "shelves/scifi/books/left-hand-of-darkness", "shelves/scifi/books/earthsea"]


def test_delete(client):
    shelf = client.post("/v1/shelves", json={"theme": "empty"}).json()
    r = client.delete(f"/v1/{shelf['name']}")
    assert r.status_code == 200, r.text
    assert client.get(f"/v1/{shelf['name']}").status_code == 404


def test_custom_kind_head(client, demo_backend):
    r = client.head("/v1/shelves/scifi")
    assert r.status_code == 200
    assert demo_backend.recorder.calls["CheckShelf"] == 1


def test_additional_binding(client):
    book = client.get("/v1/shelves/scifi/books", params={"pageSize": 1}).json()["books"][0]
    book_id = book["name"].rsplit("/", 1)[1]
    r = client.get(f"/v1/books/{book_id}")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == book["name"]


def test_response_body(client):
    r = client.get("/v1/shelves:list")
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list) and r.json()[0]["name"].startswith("shelves/")


def test_unannotated_method_default_route(client, demo_backend):
    r = client.post(f"{LIB}/ArchiveShelf", json={"name": "shelves/history"})
    assert r.status_code == 200, r.text
    assert r.json()["archived"] is True
    assert demo_backend.recorder.calls["ArchiveShelf"] == 1


def test_http_body_response(client):
    book = client.get("/v1/shelves/scifi/books", params={"pageSize": 1}).json()["books"][0]
    r = client.get(f"/v1/{book['name']}/cover")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.content.startswith(b'<svg xmlns="http://www.w3.org/2000/svg" ') and r.content.endswith(b"</svg>")
    assert f">{book['title']}</text>".encode() in r.content


def test_literal_beats_variable(client, demo_backend):
    r = client.get("/v1/users/me")
    # GetMe answered: no identity reaches it here (no auth configured), so the backend says 401.
    assert r.status_code == 401, r.text
    assert [(d["@type"], d["reason"]) for d in r.json()["details"]] == [
        ("type.googleapis.com/google.rpc.ErrorInfo", "NO_IDENTITY")]
    assert demo_backend.recorder.calls["GetMe"] == 1
    assert demo_backend.recorder.calls["GetUser"] == 0


def test_repeated_query_parameter(client):
    r = client.get("/v1/users", params=[("userIds", "ada"), ("user_ids", "grace")])
    assert r.status_code == 200, r.text


def test_server_streaming_ndjson(client):
    with client.stream("GET", "/v1/shelves/scifi/books:stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line["name"] for line in lines] == [
        "shelves/scifi/books/dune", "shelves/scifi/books/neuromancer",
        "shelves/scifi/books/left-hand-of-darkness", "shelves/scifi/books/earthsea"]


def test_stream_error_after_start_is_last_line(client):
    # The backend waits 2 s before each book and the deadline is 3 s: the first book arrives a
    # second before the deadline, the second would come a second after it.
    with client.stream(
        "GET", "/v1/shelves/scifi/books:stream", params={"delayMs": 2000}, headers={"grpc-timeout": "3S"}
    ) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line.get("name") for line in lines] == ["shelves/scifi/books/dune", None]
    assert lines[-1]["error"]["code"] == 4  # DEADLINE_EXCEEDED


def test_client_streaming_ndjson_body(client, demo_backend):
    body = b'{"book": {"title": "One"}}\n{"book": {"title": "Two"}}\n\n{"book": {"title": "Three"}}\n'
    r = client.post("/v1/shelves/scifi/books:import", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert r.json() == {"importedCount": 3, "names": [f"shelves/scifi/books/book-{n}" for n in (1, 2, 3)]}


def test_headers_forwarded_as_metadata(client, demo_backend):
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = client.get("/v1/shelves/scifi", headers={"x-request-id": "req-123", "traceparent": tp, "x-secret": "no"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-123"
    record = demo_backend.recorder.last("GetShelf")
    assert record.header("x-request-id") == "req-123"
    assert record.header("traceparent") == tp
    assert record.header("x-secret") is None


def test_request_id_generated_when_missing_or_invalid(client):
    r = client.get("/v1/shelves/scifi", headers={"x-request-id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), r.headers["x-request-id"]


# ---- errors -------------------------------------------------------------------------------


def _status(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) >= {"code", "message", "details"}, body
    return body


def test_backend_error_with_details(client):
    r = client.get("/v1/shelves/404")
    assert r.status_code == 404
    body = _status(r)
    assert body["code"] == 5
    types = [d["@type"] for d in body["details"]]
    assert "type.googleapis.com/google.rpc.ResourceInfo" in types


def test_backend_invalid_argument_with_field_violations(client):
    r = client.post("/v1/shelves/scifi/books", json={"title": ""})
    assert r.status_code == 400
    details = _status(r)["details"]
    assert any(d["@type"].endswith("google.rpc.BadRequest") for d in details)


def test_malformed_json_is_400(client):
    r = client.post("/v1/shelves/scifi/books", content=b'{"title": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert _status(r)["code"] == 3


def test_wrong_type_names_field(client):
    r = client.post("/v1/shelves/scifi/books", json={"title": "x", "pageCount": "many"})
    assert r.status_code == 400
    message = _status(r)["message"]
    assert "pageCount" in message and "page_count" not in message  # the field as the client spelled it


def test_unknown_query_parameter_is_400(client):
    r = client.get("/v1/shelves/scifi/books", params={"nope": "1"})
    assert r.status_code == 400
    assert "nope" in _status(r)["message"]


def test_bad_query_value_is_400(client):
    r = client.get("/v1/shelves/scifi/books", params={"pageSize": "ten"})
    assert r.status_code == 400
    message = _status(r)["message"]
    assert "'pageSize'" in message and "page_size" not in message  # the parameter as the client spelled it


def test_no_route_is_404(client):
    r = client.get("/v2/nothing/here")
    assert r.status_code == 404
    assert _status(r)["code"] == 5


def test_wrong_method_is_405_with_allow(client):
    r = client.put("/v1/shelves")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]
    _status(r)


def test_body_over_limit_is_413(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], transcoding={"max_body_bytes": 1024})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url) as c:
        r = c.post("/v1/shelves/scifi/books", json={"title": "x" * 5000})
        assert r.status_code == 413
        assert _status(r)["code"] == 8
        assert demo_backend.recorder.calls["CreateBook"] == 0


def test_delay_header_not_forwarded_by_default(client, demo_backend):
    # x-demo-delay-ms is not in the default forward list, so the backend answers at once; the
    # next test forwards it to get the 504.
    r = client.get("/v1/shelves/scifi", headers={"x-demo-delay-ms": "2000", "grpc-timeout": "5S"})
    assert r.status_code == 200, r.text
    assert demo_backend.recorder.last("GetShelf").header("x-demo-delay-ms") is None


def test_deadline_is_504_with_forwarded_delay(demo_backend):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target, "timeout": "300ms"}],
        transcoding={"forward_headers": ["x-request-id", "x-demo-delay-ms"]},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        r = c.get("/v1/shelves/scifi", headers={"x-demo-delay-ms": "2000"})
        assert r.status_code == 504
        assert _status(r)["code"] == 4
        # A client may shorten the deadline but never lengthen it past max_timeout.
        rec = demo_backend.recorder
        c.get("/v1/shelves/scifi", headers={"grpc-timeout": "100m"})
        assert rec.last("GetShelf").time_remaining <= 0.1 + 1e-3


def test_bad_timeout_header_is_400(client):
    r = client.get("/v1/shelves/scifi", headers={"grpc-timeout": "soon"})
    assert r.status_code == 400
    assert "grpc-timeout" in _status(r)["message"]


def test_backend_unreachable_is_503(demo_descriptor_set, unused_port):
    config = gateway_config(
        [{"name": "dead", "target": f"127.0.0.1:{unused_port}", "descriptors": str(demo_descriptor_set), "timeout": "1s"}]
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        r = c.get("/v1/shelves/scifi")
        assert r.status_code == 503
        assert _status(r)["code"] == 14


def test_response_metadata_headers(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], transcoding={"response_metadata": True})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url) as c:
        r = c.get("/v1/shelves/scifi")
        assert r.status_code == 200
        assert any(k.startswith("grpc-metadata-") for k in r.headers), dict(r.headers)


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["backends"]["demo"]["loaded"] is True
