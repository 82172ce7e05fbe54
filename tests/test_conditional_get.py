"""Conditional GETs through a real gateway: ETags made by the gateway and set by
backends, If-None-Match -> 304, Cache-Control defaults, replies per principal."""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from edge.conditional import CachingConfig, backend_etag, etag_of, if_none_match_matches
from tests.support.auth import bearer, issuer_config, mint
from tests.support.echo import echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

MOBILE = Path(__file__).resolve().parents[1] / "protos" / "edgemobile" / "descriptors.binpb"
STRONG = re.compile(r'^"[A-Za-z0-9_-]{22}"$')


# ---- the pieces, as tables ----------------------------------------------------------------------


@pytest.mark.parametrize("header, etag, matches", [
    ('"abc"', b'"abc"', True),
    ('W/"abc"', b'"abc"', True),  # weak comparison: W/ ignored on either side
    ('"abc"', b'W/"abc"', True),
    ('"abd"', b'"abc"', False),
    ('"x", "abc"', b'"abc"', True),
    ('"x",W/"abc" , "y"', b'"abc"', True),
    ('"x", "y"', b'"abc"', False),
    ("*", b'"abc"', True),
    (" * ", b'"abc"', True),
    ("abc", b'"abc"', False),  # unquoted: not an entity tag
    ('"abc', b'"abc"', False),
    ('"a,b"', b'"a,b"', True),  # a comma inside the quotes belongs to the tag
    ('"a", garbage, "abc"', b'"abc"', False),  # bad syntax matches nothing
    ("", b'"abc"', False),
    ('""', b'""', True),
])
def test_if_none_match(header, etag, matches):
    assert if_none_match_matches(header, etag) is matches


@pytest.mark.parametrize("value, header", [
    ('"v1"', b'"v1"'),
    ("v1", b'"v1"'),
    ('W/"v1"', b'W/"v1"'),
    (" v1 ", b'"v1"'),
    ("has space", None),
    ('"unterminated', None),
    (b"\x00binary", None),
    ("", None),
])
def test_backend_etags(value, header):
    assert backend_etag(value) == header


def test_gateway_etag_is_a_strong_sha256_prefix():
    tag = etag_of(b'{"a":1}')
    assert STRONG.match(tag.decode()) and tag == etag_of(b'{"a":1}') and tag != etag_of(b'{"a":2}')


def test_config_refuses_bad_directives():
    with pytest.raises(ValidationError, match="not a directive"):
        CachingConfig(cache_control="max age=5")
    with pytest.raises(ValidationError, match="names no method"):
        CachingConfig(routes=[{"match": "Library.GetBook", "cache_control": "no-cache"}])
    assert CachingConfig(cache_control="public,max-age=60").cache_control == "public, max-age=60"


# ---- through the gateway: the demo backend ---------------------------------------------------------


@pytest.fixture
def client(demo_backend):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        compression={"min_size": 100},
        caching={
            "cache_control": "no-cache",
            "routes": [
                {"match": "edgedemo.library.v1.LibraryService/GetShelf", "cache_control": "public, max-age=30"},
                {"match": "GET /v1/{name=shelves/*/books/*}", "etag": False},
            ],
        },
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def test_304_with_the_gateways_etag(client, demo_backend):
    first = client.get("/v1/shelves/scifi", headers={"accept-encoding": "identity"})
    etag = first.headers["etag"]
    assert STRONG.match(etag) and etag == etag_of(first.content).decode()
    assert first.headers["cache-control"] == "public, max-age=30"
    again = client.get("/v1/shelves/scifi", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=30"
    assert "content-length" not in again.headers and "content-type" not in again.headers
    assert "accept-encoding" in again.headers["vary"].lower()  # as the 200 would have said
    assert "x-request-id" in again.headers
    assert demo_backend.recorder.calls["GetShelf"] == 2  # the backend still answers: only it knows what is current
    for header in (f'"nope", {etag}', f"W/{etag}", "*"):
        assert client.get("/v1/shelves/scifi", headers={"if-none-match": header}).status_code == 304, header
    for header in ('"nope"', etag[1:-1], "W/x"):
        r = client.get("/v1/shelves/scifi", headers={"if-none-match": header})
        assert r.status_code == 200 and r.headers["etag"] == etag, header


def test_a_change_makes_a_new_etag(client):
    before = client.get("/v1/shelves/scifi/books")
    client.post("/v1/shelves/scifi/books", json={"title": "New arrival"})
    after = client.get("/v1/shelves/scifi/books", headers={"if-none-match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert after.headers["cache-control"] == "no-cache"  # the section's default


def test_compressed_replies_carry_the_tag_weak(client):
    plain = client.get("/v1/shelves/scifi/books", headers={"accept-encoding": "identity"})
    zipped = client.get("/v1/shelves/scifi/books", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == "W/" + plain.headers["etag"]  # one representation's data, coded
    # Either form gets the 304, whatever the client accepts now.
    for tag, accept in ((zipped.headers["etag"], "identity"), (plain.headers["etag"], "gzip")):
        r = client.get("/v1/shelves/scifi/books", headers={"if-none-match": tag, "accept-encoding": accept})
        assert r.status_code == 304 and r.headers["etag"] == plain.headers["etag"]


def test_no_etag_on_errors_writes_streams_or_where_turned_off(client):
    missing = client.get("/v1/shelves/nope", headers={"if-none-match": "*"})
    assert missing.status_code == 404 and "etag" not in missing.headers and "cache-control" not in missing.headers
    created = client.post("/v1/shelves", json={"theme": "t"}, headers={"if-none-match": "*"})
    assert created.status_code == 200 and "etag" not in created.headers
    with client.stream("GET", "/v1/shelves/scifi/books:stream") as stream:
        assert stream.status_code == 200 and "etag" not in stream.headers
    book = client.get("/v1/shelves/scifi/books/dune")
    assert book.status_code == 200 and "etag" not in book.headers and book.headers["cache-control"] == "no-cache"
    assert client.get("/v1/shelves/scifi/books/dune", headers={"if-none-match": "*"}).status_code == 200


def test_batch_items_answer_their_own_if_none_match(client):
    etag = client.get("/v1/shelves/scifi").headers["etag"]
    items = client.post("/v1/batch", json={"requests": [
        {"id": "same", "url": "/v1/shelves/scifi", "headers": {"if-none-match": etag}},
        {"id": "fresh", "url": "/v1/shelves/scifi"},
    ]}).json()["responses"]
    assert items[0]["status"] == 304 and items[0]["body"] is None and items[0]["headers"]["etag"] == etag
    assert items[1]["status"] == 200 and items[1]["headers"]["etag"] == etag


def test_without_the_section_nothing_changes(demo_backend):
    with running_gateway(gateway_config([{"name": "demo", "target": demo_backend.target}])) as gw, \
            httpx.Client(base_url=gw.url, timeout=10) as c:
        r = c.get("/v1/shelves/scifi", headers={"if-none-match": "*"})
        assert r.status_code == 200 and "etag" not in r.headers and "cache-control" not in r.headers


# ---- a backend's own ETag and Cache-Control --------------------------------------------------------


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(MOBILE) as backend:
        yield backend


def _echo_gateway(echo, caching):
    names = ["x-echo-header-etag", "x-echo-header-cache-control", "x-echo-trailer-etag"]
    backends = [{"name": "mobile", "target": echo.target, "descriptors": str(MOBILE)}]
    return gateway_config(backends, transcoding={"forward_headers": names}, caching=caching)


def test_backend_etag_and_cache_control_win(echo):
    with running_gateway(_echo_gateway(echo, {"cache_control": "max-age=1"})) as gw, \
            httpx.Client(base_url=gw.url, timeout=10) as c:
        set_by_backend = {"x-echo-header-etag": "rev-7", "x-echo-header-cache-control": "max-age=600, must-revalidate"}
        r = c.get("/v1/nodes/a", headers=set_by_backend)
        assert r.headers["etag"] == '"rev-7"' and r.headers["cache-control"] == "max-age=600, must-revalidate"
        assert c.get("/v1/nodes/a", headers={**set_by_backend, "if-none-match": '"rev-7"'}).status_code == 304
        # The same reply bytes with another backend tag: not a match (the backend's tag is what counts).
        assert c.get("/v1/nodes/a", headers={"x-echo-header-etag": "rev-8", "if-none-match": '"rev-7"'}).status_code == 200
        # In trailing metadata, and already quoted as a weak tag.
        r = c.get("/v1/nodes/a", headers={"x-echo-trailer-etag": 'W/"t-1"', "if-none-match": '"t-1"'})
        assert r.status_code == 304 and r.headers["etag"] == 'W/"t-1"'
        # A backend value that is no entity tag is ignored: the gateway's own tag stands in.
        r = c.get("/v1/nodes/a", headers={"x-echo-header-etag": "two words"})
        assert STRONG.match(r.headers["etag"]) and r.headers["cache-control"] == "max-age=1"


def test_backend_etag_counts_even_where_the_gateway_makes_none(echo):
    with running_gateway(_echo_gateway(echo, {"etag": False})) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        assert "etag" not in c.get("/v1/nodes/a").headers
        r = c.get("/v1/nodes/a", headers={"x-echo-header-etag": "b1", "if-none-match": '"b1"'})
        assert r.status_code == 304 and "cache-control" not in r.headers


# ---- replies that vary by principal --------------------------------------------------------------


def test_routes_taking_credentials_vary_and_stay_private(demo_backend, idp, auth_keys, echo):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target},
         {"name": "mobile", "target": echo.target, "descriptors": str(MOBILE)}],
        transcoding={"forward_headers": ["x-echo-header-cache-control"]},
        auth={
            "issuers": [issuer_config(idp)],
            "policies": [
                {"match": "edgedemo.library.v1.LibraryService/*", "auth": "required"},
                {"match": "edgedemo.users.v1.UserService/ListUsers", "auth": "optional"},
                {"match": "edgedemo.users.v1.UserService/GetUser", "auth": "none"},
                {"match": "edgemobile.v1.MobileService/*", "auth": "required"},
            ],
        },
        caching={"cache_control": "public, max-age=60, s-maxage=600"},
    )
    token = bearer(mint(auth_keys.rsa))
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        shelf = c.get("/v1/shelves/scifi", headers=token)
        assert shelf.headers["cache-control"] == "private, max-age=60"
        assert "authorization" in shelf.headers["vary"].lower()
        # A token's reply is the caller's: its 304 keeps it private too.
        again = c.get("/v1/shelves/scifi", headers={**token, "if-none-match": shelf.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == "private, max-age=60"
        assert "authorization" in again.headers["vary"].lower()
        # Optional auth: anonymous replies keep the configured value, but still vary by credential.
        anonymous = c.get("/v1/users")
        assert anonymous.headers["cache-control"] == "public, max-age=60, s-maxage=600"
        assert "authorization" in anonymous.headers["vary"].lower()
        signed_in = c.get("/v1/users", headers=token)
        assert signed_in.headers["cache-control"] == "private, max-age=60"
        # No credential taken on the route: nothing to vary by.
        public = c.get("/v1/users/ada")
        assert public.headers["cache-control"] == "public, max-age=60, s-maxage=600"
        assert "authorization" not in public.headers.get("vary", "").lower()
        # Only the backend can make a caller's reply shared.
        shared = c.get("/v1/nodes/a", headers={**token, "x-echo-header-cache-control": "public, max-age=5"})
        assert shared.headers["cache-control"] == "public, max-age=5"
        mine = c.get("/v1/nodes/a", headers={**token, "x-echo-header-cache-control": "max-age=5"})
        assert mine.headers["cache-control"] == "private, max-age=5"
