"""`fields` through a real gateway: the demo backend, and an echo backend whose replies
show exactly what it received (read_mask included)."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.support.echo import ECHO_CONTROLS, echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

MOBILE = Path(__file__).resolve().parents[1] / "protos" / "edgemobile" / "descriptors.binpb"

TREE = {
    "name": "root",
    "title": "The root",
    "size": "12",
    "child": {"name": "kid", "title": "A child", "child": {"name": "grandkid", "title": "Deep", "size": "3"}},
    "items": [{"name": "i1", "title": "One", "tags": ["a"]}, {"name": "i2", "title": "Two", "size": "2"}],
    "byKey": {"x": {"name": "nx", "title": "X"}, "y": {"name": "ny", "title": "Y", "labels": {"k": "v"}}},
    "labels": {"env": "prod", "team": "core"},
    "tags": ["t1", "t2"],
    "updateTime": "2024-05-01T10:00:00Z",
    "extra": {"a": {"b": 1, "c": 2}, "d": "e"},
}


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(MOBILE) as backend:
        yield backend


@pytest.fixture(scope="module")
def node_class():
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(MOBILE.read_bytes()).file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("edgemobile.v1.Node"))


def _gateway(echo, **sections):
    backends = [{"name": "mobile", "target": echo.target, "descriptors": str(MOBILE)}]
    return gateway_config(backends, transcoding={"forward_headers": ECHO_CONTROLS}, **sections)


@pytest.fixture(scope="module")
def client(echo):
    with running_gateway(_gateway(echo)) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def _error(r: httpx.Response, status: int = 400) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == 3 and set(body) >= {"code", "message"}
    return body["message"]


# ---- trimming, on every kind of field ---------------------------------------------------------


@pytest.mark.parametrize("fields, expected", [
    ("name,title", {"name": "root", "title": "The root"}),
    ("child(child(title))", {"child": {"child": {"title": "Deep"}}}),
    ("child/child/size,child/name", {"child": {"name": "kid", "child": {"size": "3"}}}),
    ("items(title)", {"items": [{"title": "One"}, {"title": "Two"}]}),
    ("items/size", {"items": [{}, {"size": "2"}]}),
    ("byKey/*/title", {"byKey": {"x": {"title": "X"}, "y": {"title": "Y"}}}),
    ("byKey(y(labels))", {"byKey": {"y": {"labels": {"k": "v"}}}}),
    ("by_key/x", {"byKey": {"x": {"name": "nx", "title": "X"}}}),
    ("labels(team)", {"labels": {"team": "core"}}),
    ("labels,tags,updateTime", {"labels": {"env": "prod", "team": "core"}, "tags": ["t1", "t2"],
                                "updateTime": "2024-05-01T10:00:00Z"}),
    ("extra/a/c,extra/d", {"extra": {"a": {"c": 2}, "d": "e"}}),
    ("update_time,child.title", {"child": {"title": "A child"}, "updateTime": "2024-05-01T10:00:00Z"}),
    ("*", TREE),
    ("", TREE),
    ("*,child/name", {**TREE, "child": {"name": "kid"}}),
])
def test_nested_repeated_and_map_fields(client, fields, expected):
    r = client.post("/v1/nodes", params={"fields": fields}, json=TREE)
    assert r.status_code == 200, r.text
    assert r.json() == expected


def test_trimmed_reply_is_smaller_and_compressible(client):
    whole = client.post("/v1/nodes", json=TREE)
    part = client.post("/v1/nodes?fields=name", json=TREE)
    assert part.json() == {"name": "root"} and len(part.content) < len(whole.content)
    assert int(part.headers["content-length"]) == len(part.content)


@pytest.mark.parametrize("fields, named", [
    ("nmae", "'nmae' names no field of edgemobile.v1.Node"),
    ("child(child(titel))", "'child.child.titel' names no field of edgemobile.v1.Node"),
    ("items/size/x", "'items.size.x' selects inside 'items.size'"),
    ("updateTime/seconds", "google.protobuf.Timestamp"),
    ("byKey/*/nope", "'byKey.*.nope' names no field of edgemobile.v1.Node"),
    ("items(name", "parenthesis at position 6 is not closed"),
    ("name,,title", "missing at position 6"),
])
def test_bad_masks_are_400s_naming_the_field(client, echo, fields, named):
    calls = len(echo.calls)
    message = _error(client.get("/v1/nodes/root", params={"fields": fields}))
    assert named in message
    assert len(echo.calls) == calls  # refused before the backend is called
    # The same bad value again (now from the per-route cache) is refused the same way.
    assert _error(client.get("/v1/nodes/root", params={"fields": fields})) == message


def test_fields_given_twice_is_a_400(client):
    assert "more than once" in _error(client.get("/v1/nodes/root?fields=name&fields=title"))


def test_errors_are_not_trimmed(client):
    r = client.get("/v1/nodes/root?fields=name", headers={"x-echo-fail-after": "0", "x-echo-code": "NOT_FOUND"})
    assert r.status_code == 404 and r.json()["code"] == 5 and "message" in r.json()


# ---- read_mask for the backend ---------------------------------------------------------------


def test_mask_reaches_the_backend_as_read_mask(client, echo, node_class):
    r = client.get("/v1/nodes/root?title=T&fields=name,child(title,size),byKey/*/title,labels/env")
    assert r.status_code == 200 and r.json() == {"name": "root"}  # the echo's fields: only name was set
    sent = node_class.FromString(echo.calls_to("/GetNode")[-1].requests[0])
    assert list(sent.read_mask.paths) == ["by_key", "child.size", "child.title", "labels", "name"]
    # The mask and the reply agree: asking for readMask shows what the backend got.
    r = client.get("/v1/nodes/root?fields=name,readMask")
    assert r.json() == {"name": "root", "readMask": "name,readMask"}


def test_read_mask_under_response_body_is_relative_to_the_reply_message(client, echo, node_class):
    assert client.get("/v1/nodes/root/items?fields=title,child/size").status_code == 200
    sent = node_class.FromString(echo.calls_to("/GetItems")[-1].requests[0])
    assert list(sent.read_mask.paths) == ["items.child.size", "items.title"]


def test_read_mask_left_alone_when_the_client_sets_it_or_selects_everything(client, echo, node_class):
    client.get("/v1/nodes/root?readMask=title&fields=name")
    assert list(node_class.FromString(echo.calls_to("/GetNode")[-1].requests[0]).read_mask.paths) == ["title"]
    client.get("/v1/nodes/root?fields=*")
    assert not node_class.FromString(echo.calls_to("/GetNode")[-1].requests[0]).HasField("read_mask")
    client.get("/v1/nodes/root")
    assert not node_class.FromString(echo.calls_to("/GetNode")[-1].requests[0]).HasField("read_mask")


# ---- where `fields` is not the gateway's, or means nothing -------------------------------------


def test_a_methods_own_fields_field_wins(client, echo):
    r = client.get("/v1/queries/q1?fields=items(name)")
    assert r.status_code == 200
    assert r.json() == {"name": "q1", "fields": "items(name)"}  # passed to the method, reply untrimmed


def test_override_makes_the_gateways_parameter_win(echo):
    config = _gateway(echo, partial_responses={"override": ["edgemobile.v1.MobileService/Search"]})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        assert c.get("/v1/queries/q1?fields=name").json() == {"name": "q1"}  # trimmed; the method's field unset


def test_opt_out_hands_fields_to_the_query_mapper(echo):
    config = _gateway(echo, partial_responses={"opt_out": ["GET /v1/nodes/{name}"]})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        message = _error(c.get("/v1/nodes/root?fields=name"))
        assert "unknown query parameter 'fields'" in message
        assert c.post("/v1/nodes?fields=name", json=TREE).json() == {"name": "root"}  # other routes keep it


def test_disabled_everywhere(echo):
    with running_gateway(_gateway(echo, partial_responses={"enabled": False})) as gw, \
            httpx.Client(base_url=gw.url, timeout=10) as c:
        assert "unknown query parameter 'fields'" in _error(c.get("/v1/nodes/root?fields=name"))


def test_response_body_routes(client):
    items = client.get("/v1/nodes/root/items?fields=title")  # response_body: items, a list of Node
    assert items.status_code == 200 and items.json() == []  # GET cannot fill items; the empty list stays a list
    message = _error(client.get("/v1/nodes/root/tags?fields=x"))
    assert "answers the field 'tags' alone" in message
    assert _error(client.get("/v1/nodes/root:watch?fields=name")).startswith("fields: this route answers a stream")


# ---- the demo backend: a list call, nested messages, maps --------------------------------------


def test_demo_list_call_and_map_field(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}])
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        whole = c.get("/v1/shelves/scifi/books")
        part = c.get("/v1/shelves/scifi/books", params={"fields": "books(name,title),nextPageToken"})
        assert part.status_code == 200
        assert part.json() == {"books": [{"name": b["name"], "title": b["title"]} for b in whole.json()["books"]]}
        assert len(part.content) < len(whole.content) / 2
        user = c.get("/v1/users/ada?fields=displayName,labels(team,missing)")
        assert user.json() == {"displayName": "Ada Lovelace", "labels": {"team": "engines"}}
        assert "names no field of edgedemo.library.v1.Book" in _error(c.get("/v1/shelves/scifi/books?fields=books/isbm"))
        # In a batch, each item's URL takes its own `fields`.
        batch = c.post("/v1/batch", json={"requests": [
            {"id": "a", "url": "/v1/shelves/scifi?fields=theme"},
            {"id": "b", "url": "/v1/shelves/scifi?fields=nope"},
        ]}).json()["responses"]
        assert batch[0]["body"] == {"theme": "Science Fiction & Fantasy"}
        assert batch[1]["status"] == 400 and "'nope'" in batch[1]["body"]["message"]


def test_openapi_documents_the_parameter_where_it_is_the_gateways(client):
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)

    def names(path: str, kind: str = "get") -> list[str]:
        return [p["name"] for p in document["paths"][path][kind].get("parameters", [])]

    get_node = next(p for p in document["paths"]["/v1/nodes/{name}"]["get"]["parameters"] if p["name"] == "fields")
    assert get_node["in"] == "query" and get_node["schema"] == {"type": "string"}
    assert "read_mask" in get_node["description"] and "400" in get_node["description"]
    assert names("/v1/nodes", "post").count("fields") == 1
    assert names("/v1/queries/{name}").count("fields") == 1  # the method's own field, described once
    assert "fields" not in names("/v1/nodes/{name}/tags")  # a scalar reply field: nothing to select
    assert "fields" not in names("/v1/nodes/{name}:watch")  # a stream
    items = next(p for p in document["paths"]["/v1/nodes/{name}/items"]["get"]["parameters"] if p["name"] == "fields")
    assert "read_mask" in items["description"]
