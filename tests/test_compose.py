"""Composed routes through a real gateway, a real demo backend and a real JWKS server:
three parts, one depending on another, each failure policy, auth and limits per part."""
from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from edge.compose import compose_problems
from edge.config import GatewayConfig
from tests.support.auth import bearer, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway

LIBRARY = "edgedemo.library.v1.LibraryService"
USERS = "edgedemo.users.v1.UserService"
DELAY = "x-demo-delay-ms"

SCREEN = {
    "route": "GET /v1/screens/shelf/{shelf}",
    "summary": "A shelf, its books and the caller",
    "timeout": "5s",
    "parts": [
        {"id": "shelf", "method": f"{LIBRARY}/GetShelf", "request": {"name": "shelves/{{path.shelf}}"}, "timeout": "2s"},
        {"id": "books", "method": f"{LIBRARY}/ListBooks",
         "request": {"parent": "{{shelf.body.name}}", "pageSize": "{{query.pageSize}}", "author": "{{query.author}}"},
         "fields": "books(name,title),nextPageToken"},
        {"id": "me", "method": f"{USERS}/GetMe", "on_error": "include"},
    ],
}
# One part slower than its own timeout; one reading the token's claims; one only feeding another.
EXTRAS = {
    "route": "GET /v1/screens/profile",
    "parts": [
        {"id": "user", "method": f"{USERS}/GetUser", "request": {"userId": "{{claims.sub}}"}},
        {"id": "slow", "method": f"{LIBRARY}/GetShelf", "request": {"name": "shelves/history"},
         "headers": {DELAY: "2000"}, "timeout": "0.3s", "on_error": "include"},
        {"id": "source", "method": f"{LIBRARY}/GetShelf", "request": {"name": "shelves/scifi"}, "output": False},
        {"id": "theme", "key": "firstBook", "method": f"{LIBRARY}/ListBooks",
         "request": {"parent": "{{source.body.name}}", "pageSize": 1}},
    ],
}


def _config(demo_backend, idp, **sections):
    defaults = {
        "transcoding": {"forward_headers": [DELAY]},
        "auth": {
            "issuers": [issuer_config(idp)],
            "identity_metadata": {"x-user-id": "sub"},
            "policies": [
                {"match": f"{LIBRARY}/*", "auth": "required", "scopes_all_of": ["library.read"]},
                {"match": f"{USERS}/GetUser", "auth": "none"},
                {"match": f"{USERS}/GetMe", "auth": "required"},
            ],
        },
        "rate_limits": {"policies": [
            {"name": "books", "limit": 3, "window": "1m", "key": "principal", "match": [f"{LIBRARY}/ListBooks"]},
        ]},
        "compose": [SCREEN, EXTRAS],
    }
    return gateway_config([{"name": "demo", "target": demo_backend.target}], **{**defaults, **sections})


@pytest.fixture
def gateway(demo_backend, idp):
    with running_gateway(_config(demo_backend, idp, caching={})) as gw, httpx.Client(base_url=gw.url, timeout=15) as c:
        yield gw, c


def calls(demo_backend, method: str) -> int:
    return demo_backend.recorder.calls[method]


def test_three_parts_one_depending_on_another(gateway, demo_backend, auth_keys):
    _, client = gateway
    token = bearer(mint(auth_keys.rsa, sub="ada"))
    r = client.get("/v1/screens/shelf/scifi?pageSize=2", headers=token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["shelf", "books", "me"]
    assert body["shelf"]["name"] == "shelves/scifi" and body["shelf"]["theme"]
    assert [set(b) for b in body["books"]["books"]] == [{"name", "title"}] * 2  # the part's own `fields`
    assert body["books"]["nextPageToken"]
    assert body["me"]["userId"] == "ada"
    listed = demo_backend.recorder.last("ListBooks")
    assert listed.header("x-user-id") == "ada"  # each part carries the caller as a call alone would
    assert demo_backend.recorder.last("GetMe").header("x-user-id") == "ada"
    # The query fills the request; a parameter not sent leaves its field unset.
    filtered = client.get("/v1/screens/shelf/scifi?author=Frank%20Herbert", headers=token).json()
    assert [b["title"] for b in filtered["books"]["books"]] == ["Dune"]


def test_include_policy_puts_the_error_under_its_key(gateway, demo_backend, auth_keys):
    _, client = gateway
    # No credential: the library parts refuse (fail policy) -> the whole answer is their 401.
    anonymous = client.get("/v1/screens/shelf/scifi")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert calls(demo_backend, "GetShelf") == 0
    # A token without `library.read`: the shelf part is a 403, the answer too, with its challenge.
    no_scope = client.get("/v1/screens/shelf/scifi", headers=bearer(mint(auth_keys.rsa, scope="other")))
    assert no_scope.status_code == 403 and "insufficient_scope" in no_scope.headers["www-authenticate"]
    assert calls(demo_backend, "ListBooks") == 0  # the dependent part was never sent
    # `slow` outlives its own timeout; its policy is `include`, so the answer is 200 with its
    # error in its place, beside a part built from the token's claims and one fed by a hidden part.
    r = client.get("/v1/screens/profile", headers=bearer(mint(auth_keys.rsa, sub="ada")))
    assert r.status_code == 200
    body = r.json()
    assert body["user"]["userId"] == "ada" and body["user"]["displayName"] == "Ada Lovelace"  # from {{claims.sub}}
    assert body["slow"] == {"error": body["slow"]["error"]} and body["slow"]["error"]["code"] == 4  # its own timeout
    assert "source" not in body and len(body["firstBook"]["books"]) == 1  # a hidden part fed another


def test_include_policy_with_an_auth_failure(demo_backend, idp):
    # Library routes public, GetMe requiring a token: an anonymous screen still answers, with
    # the `include` part's 401 under its key.
    with running_gateway(_config(demo_backend, idp, auth={
        "issuers": [issuer_config(idp)],
        "identity_metadata": {"x-user-id": "sub"},
        "policies": [{"match": f"{LIBRARY}/*", "auth": "none"}, {"match": f"{USERS}/GetMe", "auth": "required"}],
    })) as gw, httpx.Client(base_url=gw.url, timeout=15) as c:
        r = c.get("/v1/screens/shelf/scifi")  # anonymous: the library parts answer, `me` refuses
        assert r.status_code == 200
        assert r.json()["shelf"]["name"] == "shelves/scifi"
        assert r.json()["me"]["error"]["code"] == 16  # UNAUTHENTICATED, under its key


def test_fail_policy_answers_the_failing_parts_error(gateway, demo_backend, auth_keys):
    _, client = gateway
    before = calls(demo_backend, "ListBooks")
    r = client.get("/v1/screens/shelf/nope", headers=bearer(mint(auth_keys.rsa)))
    assert r.status_code == 404 and r.json()["code"] == 5 and "shelves/nope" in r.json()["message"]
    assert calls(demo_backend, "ListBooks") == before  # its dependant was not sent


def test_limits_apply_to_each_part_as_alone(gateway, demo_backend, auth_keys):
    _, client = gateway
    token = bearer(mint(auth_keys.rsa, sub="lim"))
    for _ in range(3):
        assert client.get("/v1/screens/shelf/scifi", headers=token).status_code == 200
    shelves = calls(demo_backend, "GetShelf")
    refused = client.get("/v1/screens/shelf/scifi", headers=token)
    assert refused.status_code == 429 and "retry-after" in refused.headers  # the books part's own limit
    assert calls(demo_backend, "GetShelf") == shelves + 1  # the shelf part, not limited, ran
    # The same budget as the route called alone: it is spent.
    assert client.get("/v1/shelves/scifi/books", headers=token).status_code == 429
    # Another caller has a budget of their own.
    assert client.get("/v1/screens/shelf/scifi", headers=bearer(mint(auth_keys.rsa, sub="other"))).status_code == 200


def test_fields_on_a_composed_reply_skips_unselected_parts(gateway, demo_backend, auth_keys):
    _, client = gateway
    token = bearer(mint(auth_keys.rsa, sub="ada"))
    me = calls(demo_backend, "GetMe")
    r = client.get("/v1/screens/shelf/scifi?fields=shelf(theme)", headers=token)
    assert r.status_code == 200 and r.json() == {"shelf": {"theme": "Science Fiction & Fantasy"}}
    assert calls(demo_backend, "GetMe") == me
    r = client.get("/v1/screens/shelf/scifi?fields=books/books/title", headers=token)
    assert r.json() == {"books": {"books": [{"title": t} for t in ("Dune", "Neuromancer", "The Left Hand of Darkness",
                                                                      "A Wizard of Earthsea")]}}
    bad = client.get("/v1/screens/shelf/scifi?fields=shelf(nope)", headers=token)
    assert bad.status_code == 400 and "'shelf.nope' names no field of edgedemo.library.v1.Shelf" in bad.json()["message"]
    unknown = client.get("/v1/screens/shelf/scifi?fields=profile", headers=token)
    assert unknown.status_code == 400 and "names no key" in unknown.json()["message"]
    stray = client.get("/v1/screens/shelf/scifi?page_size=2", headers=token)
    assert stray.status_code == 400 and "reads pageSize, author" in stray.json()["message"]


def test_conditional_get_on_a_composed_route(gateway, auth_keys):
    _, client = gateway
    token = bearer(mint(auth_keys.rsa, sub="ada"))
    first = client.get("/v1/screens/shelf/scifi", headers=token)
    assert first.headers["etag"] and first.headers["cache-control"] == "private"
    assert "authorization" in first.headers["vary"].lower()
    again = client.get("/v1/screens/shelf/scifi", headers={**token, "if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_openapi_describes_composed_routes(gateway):
    from openapi_spec_validator import validate

    _, client = gateway
    document = client.get("/openapi.json").json()
    validate(document)
    operation = document["paths"]["/v1/screens/shelf/{shelf}"]["get"]
    names = [p["name"] for p in operation["parameters"]]
    assert names == ["shelf", "pageSize", "author", "fields"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert list(schema["properties"]) == ["shelf", "books", "me"]
    assert schema["properties"]["shelf"] == {"$ref": "#/components/schemas/edgedemo.library.v1.Shelf"}
    assert schema["properties"]["me"]["oneOf"][0] == {"$ref": "#/components/schemas/edgedemo.users.v1.User"}
    assert operation["security"] == [{"bearer": ["library.read"]}]
    profile = document["paths"]["/v1/screens/profile"]["get"]
    assert list(profile["responses"]["200"]["content"]["application/json"]["schema"]["properties"]) == [
        "user", "slow", "firstBook"]


def test_edge_check_finds_what_only_descriptors_tell(gateway, demo_backend, idp):
    gw, _ = gateway
    broken = GatewayConfig.model_validate({
        "backends": [{"name": "demo", "target": demo_backend.target}],
        "compose": [{"route": "GET /v1/shelves", "parts": [
            {"id": "a", "method": f"{LIBRARY}/GetShelff"},
            {"id": "b", "method": f"{LIBRARY}/GetShelf", "request": {"nmae": "x"}},
            {"id": "c", "method": f"{LIBRARY}/ListBooks", "request": {"parent": "{{b.body.nmae}}"}},
            {"id": "d", "method": f"{LIBRARY}/StreamBooks"},
            {"id": "e", "method": f"{LIBRARY}/ListBooks", "fields": "books(titel)"},
        ]}],
    })
    problems = compose_problems(broken, gw.registry.table)
    text = "\n".join(problems)
    assert "part 'a': method edgedemo.library.v1.LibraryService/GetShelff is not served" in text
    assert "part 'b': request.nmae names no field of edgedemo.library.v1.GetShelfRequest" in text
    assert "{{b.body.nmae}}: edgedemo.library.v1.Shelf has no field 'nmae' in its JSON" in text
    assert "StreamBooks streams; only unary methods" in text
    assert "'books.titel' names no field of edgedemo.library.v1.Book" in text
    assert "shadows edgedemo.library.v1.LibraryService/ListShelves's route GET /v1/shelves" in text
    assert compose_problems(_config(demo_backend, idp), gw.registry.table) == []


@pytest.mark.parametrize("parts, message", [
    ([{"id": "a", "method": "p.S/M", "request": {"x": "{{b.body.y}}"}},
      {"id": "b", "method": "p.S/M", "request": {"x": "{{a.body.y}}"}}], "dependency cycle between parts a -> b -> a"),
    ([{"id": "a", "method": "p.S/M", "request": {"x": "{{path.id}}"}}], "names no variable of /v1/x"),
    ([{"id": "a", "method": "p.S/M", "request": {"x": "{{zz.body.x}}"}}], "names no part"),
    ([{"id": "a", "method": "p.S/M", "request": {"x": "{{a.bdy}}"}}], "is not a valid reference"),
    ([{"id": "claims", "method": "p.S/M"}], "reserved"),
    ([{"id": "a", "method": "p.S/M"}, {"id": "a", "method": "p.S/M"}], "duplicate part id"),
    ([{"id": "a", "method": "p.S/M"}, {"id": "b", "key": "a", "method": "p.S/M"}], "under the key(s) a"),
    ([{"id": "a", "method": "GetShelf"}], "String should match pattern"),
    ([{"id": "a", "method": "p.S/M", "depends_on": ["q"]}], "depends on unknown id 'q'"),
    ([{"id": "a", "method": "p.S/M", "on_error": "ignore"}], "'fail' or 'include'"),
])
def test_config_refuses_broken_compositions(parts, message):
    with pytest.raises(ValidationError) as caught:
        GatewayConfig.model_validate({"backends": [{"name": "d", "target": "x:1"}],
                                      "compose": [{"route": "GET /v1/x", "parts": parts}]})
    assert message in str(caught.value)
