"""The batch endpoint through a real gateway in front of the real demo backend.

Every item must answer what the same call made alone answers; the backend's
recorder shows what was (and was not) sent, cancelled, or sent once only.
"""
from __future__ import annotations

import gzip
import json
import socket
import time
import uuid

import httpx
import pytest

from tests.support.gateway import gateway_config, running_gateway

BATCH = "/v1/batch"
DELAY = "x-demo-delay-ms"


def _gateway(demo_backend, **sections):
    sections.setdefault("transcoding", {"forward_headers": [DELAY]})
    return gateway_config([{"name": "demo", "target": demo_backend.target, "timeout": "5s", "max_timeout": "10s"}], **sections)


@pytest.fixture
def client(demo_backend):
    config = _gateway(demo_backend, batch={"stream_max_messages": 3})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=15) as c:
        yield c


def batch(client: httpx.Client, *items: dict, **kwargs) -> httpx.Response:
    return client.post(BATCH, json={"requests": list(items)}, **kwargs)


def by_id(r: httpx.Response) -> dict[str, dict]:
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()["responses"]}


def total_calls(demo_backend) -> int:
    return sum(demo_backend.recorder.calls.values())


# ---- parallelism and the graph ---------------------------------------------------------------


def test_independent_items_run_in_parallel(client, demo_backend):
    slow = {DELAY: "200"}
    alone = time.monotonic()
    assert client.get("/v1/shelves/scifi", headers=slow).status_code == 200
    slowest_alone = time.monotonic() - alone
    items = [{"id": f"s{i}", "url": "/v1/shelves/scifi", "headers": slow} for i in range(5)]
    started = time.monotonic()
    r = batch(client, *items)
    elapsed = time.monotonic() - started
    responses = r.json()["responses"]
    assert [x["id"] for x in responses] == [f"s{i}" for i in range(5)]  # request order
    assert all(x["status"] == 200 and x["body"]["name"] == "shelves/scifi" for x in responses)
    assert demo_backend.recorder.calls["GetShelf"] == 6
    # Five 200 ms items in a row would take a second; in parallel the batch costs about one item.
    assert elapsed < 2 * slowest_alone, (elapsed, slowest_alone)


@pytest.mark.parametrize(("caps", "one_at_a_time"), [
    ({}, False),
    ({"max_concurrency": 1}, True),
    ({"max_concurrency_per_backend": 1}, True),
])
def test_concurrency_caps(demo_backend, caps, one_at_a_time):
    # No dependency between the two: the listing sees the slow-to-create shelf only if it had to wait.
    with running_gateway(_gateway(demo_backend, batch=caps)) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        out = by_id(batch(
            c,
            {"id": "create", "method": "POST", "url": "/v1/shelves", "body": {"theme": "capped"}, "headers": {DELAY: "300"}},
            {"id": "list", "url": "/v1/shelves?pageSize=100"},
        ))
    names = [s["name"] for s in out["list"]["body"]["shelves"]]
    assert (out["create"]["body"]["name"] in names) is one_at_a_time


def test_chain_by_references(client):
    r = batch(
        client,
        {"id": "book", "method": "POST", "url": "/v1/{{shelf.body.name}}/books", "body": {"title": "Dune"}},
        {"id": "shelf", "method": "POST", "url": "/v1/shelves", "body": {"theme": "chain"}},
        {"id": "again", "url": "/v1/{{book.body.name}}"},
    )
    out = by_id(r)
    shelf = out["shelf"]["body"]["name"]
    assert out["book"]["status"] == 200 and out["book"]["body"]["name"].startswith(shelf + "/books/")
    assert out["again"]["body"] == out["book"]["body"]
    assert [x["id"] for x in r.json()["responses"]] == ["book", "shelf", "again"]


def test_depends_on_orders_without_references(client, demo_backend):
    # The shelf is slow to create; the listing waits for it and so sees it.
    r = batch(
        client,
        {"id": "create", "method": "POST", "url": "/v1/shelves", "body": {"theme": "ordered"}, "headers": {DELAY: "300"}},
        {"id": "list", "url": "/v1/shelves?pageSize=100", "dependsOn": ["create"]},
    )
    out = by_id(r)
    names = [s["name"] for s in out["list"]["body"]["shelves"]]
    assert out["create"]["body"]["name"] in names


def test_diamond(client, demo_backend):
    r = batch(
        client,
        {"id": "top", "method": "POST", "url": "/v1/shelves", "body": {"theme": "diamond"}},
        {"id": "left", "method": "POST", "url": "/v1/{{top.body.name}}/books", "body": {"title": "Left"},
         "headers": {DELAY: "200"}},
        {"id": "right", "method": "POST", "url": "/v1/{{top.body.name}}/books", "body": {"title": "Right"}},
        {"id": "bottom", "url": "/v1/{{top.body.name}}/books", "dependsOn": ["left", "right"]},
    )
    out = by_id(r)
    titles = sorted(b["title"] for b in out["bottom"]["body"]["books"])
    assert titles == ["Left", "Right"]  # bottom ran after both sides
    assert demo_backend.recorder.calls["CreateBook"] == 2


def test_cycle_is_400_naming_the_ids(client, demo_backend):
    r = batch(
        client,
        {"id": "a", "url": "/v1/shelves/scifi", "dependsOn": ["b"]},
        {"id": "b", "url": "/v1/shelves/scifi", "dependsOn": ["c"]},
        {"id": "c", "url": "/v1/{{a.body.name}}"},
        {"id": "free", "url": "/v1/shelves/scifi"},
    )
    assert r.status_code == 400
    message = r.json()["message"]
    assert "cycle" in message and all(f"{x}" in message for x in ("a", "b", "c"))
    self_ref = batch(client, {"id": "me", "url": "/v1/{{me.body.name}}"})
    assert self_ref.status_code == 400 and "me -> me" in self_ref.json()["message"]
    assert total_calls(demo_backend) == 0


def test_unknown_dependency_and_duplicate_ids(client, demo_backend):
    r = batch(client, {"id": "a", "url": "/v1/shelves/scifi", "dependsOn": ["ghost"]})
    assert r.status_code == 400 and "'a' depends on unknown id 'ghost'" in r.json()["message"]
    r = batch(client, {"id": "a", "url": "/v1/shelves/{{phantom.body.x}}"})
    assert r.status_code == 400 and "'phantom'" in r.json()["message"]
    r = batch(client, {"id": "a", "url": "/v1/shelves/scifi"}, {"id": "a", "url": "/v1/shelves/history"})
    assert r.status_code == 400 and "duplicate item id(s): a" in r.json()["message"]
    assert total_calls(demo_backend) == 0


def test_failed_dependency_is_424_and_not_sent(client, demo_backend):
    r = batch(
        client,
        {"id": "missing", "url": "/v1/shelves/404"},
        {"id": "create", "method": "POST", "url": "/v1/shelves", "body": {"theme": "x"}, "dependsOn": ["missing"]},
        {"id": "after", "method": "POST", "url": "/v1/{{create.body.name}}/books", "body": {"title": "t"}},
        {"id": "fine", "url": "/v1/shelves/scifi"},
    )
    out = by_id(r)
    assert out["missing"]["status"] == 404
    assert out["create"]["status"] == 424
    assert "'missing' answered 404" in out["create"]["body"]["message"]
    assert out["after"]["status"] == 424  # transitively
    assert out["fine"]["status"] == 200
    assert demo_backend.recorder.calls["CreateShelf"] == 0 and demo_backend.recorder.calls["CreateBook"] == 0


# ---- references ----------------------------------------------------------------------------


def test_reference_types_and_indices(client, demo_backend):
    r = batch(
        client,
        {"id": "list", "url": "/v1/shelves/scifi/books?pageSize=2"},
        {"id": "copy", "method": "POST", "url": "/v1/shelves/history/books", "body": {
            "title": "Copy of {{list.body.books.0.title}} ({{list.body.books.0.pageCount}} pages)",
            "author": "{{list.body.books.1.author}}",
            "pageCount": "{{list.body.books.0.pageCount}}",  # a whole-string reference keeps the number
            "tags": "{{list.body.books.0.tags}}",  # ... and the array
        }},
    )
    out = by_id(r)
    first, second = out["list"]["body"]["books"][:2]
    book = out["copy"]["body"]
    assert out["copy"]["status"] == 200, book
    assert book["title"] == f"Copy of {first['title']} ({first['pageCount']} pages)"
    assert book["author"] == second["author"]
    assert book["pageCount"] == first["pageCount"] and book["tags"] == first["tags"]


def test_missing_reference_value_is_400_without_backend_call(client, demo_backend):
    r = batch(
        client,
        {"id": "shelf", "url": "/v1/shelves/scifi"},
        {"id": "book", "method": "POST", "url": "/v1/shelves/scifi/books", "body": {"title": "{{shelf.body.nosuch}}"}},
        {"id": "deep", "url": "/v1/{{shelf.body.name.0}}"},
        {"id": "object", "url": "/v1/shelves/{{shelf.body}}"},
    )
    out = by_id(r)
    assert out["shelf"]["status"] == 200
    assert out["book"]["status"] == 400
    assert "{{shelf.body.nosuch}}" in out["book"]["body"]["message"]
    assert out["deep"]["status"] == 400
    assert out["object"]["status"] == 400 and "an object" in out["object"]["body"]["message"]
    assert demo_backend.recorder.calls["CreateBook"] == 0
    assert demo_backend.recorder.calls["GetShelf"] == 1


def test_malformed_reference_is_400_for_the_batch(client, demo_backend):
    r = batch(client, {"id": "a", "url": "/v1/shelves/scifi"}, {"id": "b", "url": "/v1/{{a.name}}"})
    assert r.status_code == 400 and "{{a.name}}" in r.json()["message"]
    assert total_calls(demo_backend) == 0
    # Double braces that name no item are plain text.
    out = by_id(batch(client, {"id": "lit", "method": "POST", "url": "/v1/shelves/scifi/books",
                               "body": {"title": "{{user.name}} and {{x}}"}}))
    assert out["lit"]["status"] == 200 and out["lit"]["body"]["title"] == "{{user.name}} and {{x}}"


# ---- every item as alone -------------------------------------------------------------------------


def test_mix_of_successes_and_every_error_class(client, demo_backend):
    items = [
        {"id": "ok", "url": "/v1/shelves/scifi"},
        {"id": "created", "method": "POST", "url": "/v1/shelves", "body": {"theme": "mix"}},
        {"id": "noroute", "url": "/v1/nothing/here"},
        {"id": "method", "method": "DELETE", "url": "/v1/shelves"},
        {"id": "badjson", "method": "POST", "url": "/v1/shelves", "body": {"theme": ["not", "a", "string"]}},
        {"id": "badquery", "url": "/v1/shelves/scifi/books?pageSize=many"},
        {"id": "notfound", "url": "/v1/shelves/404"},
        {"id": "invalid", "method": "POST", "url": "/v1/shelves/scifi/books", "body": {"title": ""}},
        {"id": "slow", "url": "/v1/shelves/scifi", "headers": {DELAY: "2000", "grpc-timeout": "200m"}},
        {"id": "badtimeout", "url": "/v1/shelves/scifi", "headers": {"x-request-timeout": "soon"}},
        {"id": "cover", "url": "/v1/shelves/scifi/books/dune/cover"},
    ]
    out = by_id(batch(client, *items))
    expected = {"ok": 200, "created": 200, "noroute": 404, "method": 405, "badjson": 400, "badquery": 400,
                "notfound": 404, "invalid": 400, "slow": 504, "badtimeout": 400, "cover": 200}
    assert {k: v["status"] for k, v in out.items()} == expected
    assert out["method"]["headers"]["allow"]
    assert any(d["@type"].endswith("ResourceInfo") for d in out["notfound"]["body"]["details"])
    assert any(d["@type"].endswith("BadRequest") for d in out["invalid"]["body"]["details"])
    assert out["cover"]["headers"]["content-type"].startswith("image/svg+xml")
    assert isinstance(out["cover"]["body"], str) and "<svg" in out["cover"]["body"]
    # The same calls alone answer the same.
    for item in items:
        if item["id"] == "created":
            continue
        alone = client.request(item.get("method", "GET"), item["url"], json=item.get("body"), headers=item.get("headers"))
        mine = out[item["id"]]
        assert alone.status_code == mine["status"], item
        if alone.headers["content-type"] == "application/json":
            if item["id"] == "slow":
                assert alone.json()["code"] == mine["body"]["code"] == 4
            else:
                assert alone.json() == mine["body"], item
        else:
            assert alone.text == mine["body"]


def test_streaming_item_is_a_json_array_with_a_cap(client):
    out = by_id(batch(
        client,
        {"id": "few", "url": "/v1/shelves/history/books:stream"},
        {"id": "many", "url": "/v1/shelves/scifi/books:stream"},
    ))
    assert out["few"]["status"] == 200 and isinstance(out["few"]["body"], list)
    assert all(b["name"].startswith("shelves/history/books/") for b in out["few"]["body"])
    assert out["many"]["status"] == 413 and "more than 3 messages" in out["many"]["body"]["message"]


def test_client_streaming_item_takes_an_ndjson_string(client, demo_backend):
    lines = '{"book": {"title": "One"}}\n{"book": {"title": "Two"}}\n'
    out = by_id(batch(client, {"id": "import", "method": "POST", "url": "/v1/shelves/scifi/books:import",
                               "headers": {"content-type": "application/x-ndjson"}, "body": lines}))
    assert out["import"]["status"] == 200, out
    assert int(out["import"]["body"].get("importedCount", out["import"]["body"].get("count", 0))) == 2


def test_own_endpoints_are_refused_per_item(client, demo_backend):
    out = by_id(batch(
        client,
        {"id": "admin", "method": "POST", "url": "/admin/reload"},
        {"id": "nested", "method": "POST", "url": "/v1/batch", "body": {"requests": []}},
        {"id": "encoded", "method": "POST", "url": "/v1/%62atch"},
        {"id": "health", "url": "/healthz"},
        {"id": "metrics", "url": "/metrics"},
        {"id": "fine", "url": "/v1/shelves/scifi"},
    ))
    for name in ("admin", "nested", "encoded", "health", "metrics"):
        assert out[name]["status"] == 400 and "gateway's own endpoints" in out[name]["body"]["message"], name
    assert out["fine"]["status"] == 200
    assert total_calls(demo_backend) == 1


def test_item_credentials_are_dropped_and_request_ids_derived(client, demo_backend):
    trace_id = uuid.uuid4().hex
    out = by_id(batch(
        client,
        {"id": "one", "url": "/v1/shelves/scifi", "headers": {"Authorization": "Bearer stolen", "X-Request-Id": "mine"}},
        headers={"x-request-id": "batch-42", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    ))
    assert out["one"]["status"] == 200
    seen = demo_backend.recorder.last("GetShelf")
    assert seen.header("x-request-id") == "batch-42/one"
    assert seen.header("authorization") is None
    assert trace_id in str(seen.header("traceparent"))  # the batch's trace carries over


def test_compressed_batch_in_and_out(client):
    document = json.dumps({"requests": [{"id": f"s{i}", "url": "/v1/shelves/scifi/books"} for i in range(5)]}).encode()
    r = client.post(BATCH, content=gzip.compress(document),
                    headers={"content-type": "application/json", "content-encoding": "gzip", "accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert [x["status"] for x in r.json()["responses"]] == [200] * 5
    bomb = gzip.compress(json.dumps({"requests": [{"id": "a", "url": "/v1/shelves/" + "x" * 2_000_000}]}).encode())
    r = client.post(BATCH, content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413


# ---- limits, deadline, disconnect ------------------------------------------------------------------


def test_limits(demo_backend):
    config = _gateway(demo_backend, batch={"max_items": 3, "max_body_bytes": "2KiB"})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        r = batch(c, *({"id": f"i{i}", "url": "/v1/shelves/scifi"} for i in range(4)))
        assert r.status_code == 400 and "4 requests; at most 3" in r.json()["message"]
        big = {"id": "big", "method": "POST", "url": "/v1/shelves", "body": {"theme": "x" * 3000}}
        r = batch(c, big)
        assert r.status_code == 413 and "2048 bytes" in r.json()["message"]
        assert c.post(BATCH, content=b"{not json").status_code == 400
        assert c.post(BATCH, json={"requests": []}).status_code == 400
        r = c.post(BATCH, json={"requests": [{"id": "a", "url": "/v1/shelves/scifi", "depends_on": []}]})
        assert r.status_code == 400 and "depends_on" in r.json()["message"]
        r = c.post(BATCH, content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        r = c.get(BATCH)
        assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert total_calls(demo_backend) == 0


def test_batch_deadline_cancels_and_reports_finished_items(client, demo_backend):
    started = time.monotonic()
    r = batch(
        client,
        {"id": "quick", "url": "/v1/shelves/scifi"},
        {"id": "slow", "url": "/v1/shelves/history", "headers": {DELAY: "5000"}},
        {"id": "waiting", "url": "/v1/{{slow.body.name}}"},
        headers={"grpc-timeout": "500m"},
    )
    elapsed = time.monotonic() - started
    out = by_id(r)
    assert out["quick"]["status"] == 200
    assert out["slow"]["status"] == 504 and out["slow"]["body"]["code"] == 4
    assert out["waiting"]["status"] == 504
    assert elapsed < 4
    assert demo_backend.recorder.wait_for("GetShelf", 2, finished=True)
    assert demo_backend.recorder.cancelled["GetShelf"] == 1
    assert demo_backend.recorder.calls["GetShelf"] == 2  # 'waiting' was never sent


def test_client_disconnect_cancels_outstanding_calls(demo_backend):
    config = _gateway(demo_backend)
    with running_gateway(config) as gw:
        body = json.dumps({"requests": [
            {"id": "a", "url": "/v1/shelves/scifi", "headers": {DELAY: "5000"}},
            {"id": "b", "url": "/v1/shelves/history", "headers": {DELAY: "5000"}},
            {"id": "c", "method": "POST", "url": "/v1/{{a.body.name}}/books", "body": {"title": "never"}},
        ]}).encode()
        port = int(gw.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/batch HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode() + body
            )
            assert demo_backend.recorder.wait_for("GetShelf", 2)
        assert demo_backend.recorder.wait_for("GetShelf", 2, finished=True)
        assert demo_backend.recorder.cancelled["GetShelf"] == 2
        assert demo_backend.recorder.calls["CreateBook"] == 0


# ---- offloads: rate limits and idempotency --------------------------------------------------------


def test_rate_limit_charges_one_unit_per_item(demo_backend):
    limits = {"policies": [{"name": "per-ip", "limit": 3, "window": "1m", "key": "ip"}]}
    config = _gateway(demo_backend, rate_limits=limits)
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        items = [{"id": f"i{i}", "url": "/v1/shelves/scifi"} for i in range(4)]
        refused = batch(c, *items)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert demo_backend.recorder.calls["GetShelf"] == 0  # never half-run
        ran = batch(c, *items[:3])
        assert ran.status_code == 200 and ran.headers["ratelimit"].startswith('"per-ip";r=0;')
        assert all(x["status"] == 200 for x in ran.json()["responses"])
        assert c.get("/v1/shelves/scifi").status_code == 429
        assert demo_backend.recorder.calls["GetShelf"] == 3


@pytest.fixture
def idem_client(demo_backend):
    config = _gateway(demo_backend, idempotency={})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def test_batch_idempotency_replays_without_calling_backends(idem_client, demo_backend):
    key = {"idempotency-key": "batch-" + uuid.uuid4().hex}
    items = [
        {"id": "shelf", "method": "POST", "url": "/v1/shelves", "body": {"theme": "once"}},
        {"id": "book", "method": "POST", "url": "/v1/{{shelf.body.name}}/books", "body": {"title": "Once"}},
    ]
    first = batch(idem_client, *items, headers=key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = batch(idem_client, *items, headers=key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert demo_backend.recorder.calls["CreateShelf"] == 1 and demo_backend.recorder.calls["CreateBook"] == 1
    other = batch(idem_client, items[0], headers=key)
    assert other.status_code == 422
    assert demo_backend.recorder.calls["CreateShelf"] == 1


def test_per_item_idempotency_keys(idem_client, demo_backend):
    item = {"id": "book", "method": "POST", "url": "/v1/shelves/scifi/books", "body": {"title": "Per item"},
            "headers": {"Idempotency-Key": "item-" + uuid.uuid4().hex}}
    first = by_id(batch(idem_client, item))["book"]
    second = by_id(batch(idem_client, item))["book"]
    assert first["status"] == second["status"] == 200
    assert second["headers"]["idempotent-replayed"] == "true"
    assert second["body"] == first["body"]
    assert demo_backend.recorder.calls["CreateBook"] == 1


# ---- auth ---------------------------------------------------------------------------------------


def test_batch_api_key_once_and_item_scopes(demo_backend):
    from edge.auth import hash_api_key

    reader, writer = "reader-" + uuid.uuid4().hex, "writer-" + uuid.uuid4().hex
    auth = {
        "api_keys": [
            {"sha256": hash_api_key(reader), "principal": "reader", "scopes": ["library.read"]},
            {"sha256": hash_api_key(writer), "principal": "writer", "scopes": ["library.read", "library.write"]},
        ],
        "default_policy": {"scopes_all_of": ["library.read"]},
        "policies": [{"match": "edgedemo.library.v1.LibraryService/CreateShelf", "scopes_all_of": ["library.write"]}],
    }
    config = _gateway(demo_backend, auth=auth)
    items = [
        {"id": "read", "url": "/v1/shelves/scifi"},
        # An item's own credential is dropped: the writer's key does not lift this item.
        {"id": "write", "method": "POST", "url": "/v1/shelves", "body": {"theme": "x"}, "headers": {"x-api-key": writer}},
    ]
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        for bad in ({}, {"x-api-key": "not-a-key"}):
            r = batch(c, *items, headers=bad)
            assert r.status_code == 401 and "www-authenticate" in r.headers
        assert total_calls(demo_backend) == 0
        out = by_id(batch(c, *items, headers={"x-api-key": reader}))
        assert out["read"]["status"] == 200
        assert out["write"]["status"] == 403 and "library.write" in out["write"]["body"]["message"]
        assert 'error="insufficient_scope"' in out["write"]["headers"]["www-authenticate"]
        assert demo_backend.recorder.calls["CreateShelf"] == 0
        assert demo_backend.recorder.last("GetShelf").header("x-user-id") == "reader"
        out = by_id(batch(c, *items, headers={"x-api-key": writer}))
        assert out["write"]["status"] == 200


def test_batch_bearer_token_once(demo_backend, idp, auth_keys):
    from tests.support.auth import bearer, issuer_config, mint

    auth = {
        "issuers": [issuer_config(idp)],
        "policies": [
            {"match": "edgedemo.library.v1.LibraryService/*", "scopes_all_of": ["library.read"]},
            {"match": "edgedemo.library.v1.LibraryService/GetShelf", "scopes_all_of": ["library.read"],
             "forward_token": True},
            {"match": "edgedemo.library.v1.LibraryService/CreateBook", "scopes_all_of": ["library.write"]},
        ],
    }
    token = mint(auth_keys.rsa, sub="carol")
    items = [
        {"id": "shelf", "url": "/v1/shelves/scifi", "headers": {"authorization": "Bearer smuggled"}},
        {"id": "books", "url": "/v1/shelves/scifi/books?pageSize=1"},
        {"id": "write", "method": "POST", "url": "/v1/shelves/scifi/books", "body": {"title": "no"}},
    ]
    with running_gateway(_gateway(demo_backend, auth=auth)) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        expired = batch(c, *items, headers=bearer(mint(auth_keys.rsa, exp=1000, iat=900)))
        assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]
        assert total_calls(demo_backend) == 0
        out = by_id(batch(c, *items, headers=bearer(token)))
        assert (out["shelf"]["status"], out["books"]["status"], out["write"]["status"]) == (200, 200, 403)
        shelf = demo_backend.recorder.last("GetShelf")
        assert shelf.header("x-user-id") == "carol"
        assert shelf.header("authorization") == f"Bearer {token}"  # the batch's token, where the policy forwards it
        assert demo_backend.recorder.last("ListBooks").header("authorization") is None
        assert demo_backend.recorder.calls["CreateBook"] == 0
