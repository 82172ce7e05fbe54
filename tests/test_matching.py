"""The one `match` syntax (edge/matching.py): spelling, what matches, which pattern wins,
every section that uses it, and `edge check` reporting patterns that match nothing.

Routes are those of the demo descriptor set where the table says so; the tables run in
milliseconds."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError

from edge.auth.config import AuthConfig
from edge.auth.policy import PolicyResolver
from edge.checks import unmatched_patterns
from edge.compression import CompressionConfig
from edge.config import GatewayConfig
from edge.idempotency import IdempotencyConfig, IdempotencyEngine
from edge.matching import Matcher, Pattern, Target, normalize
from edge.ratelimit import RateLimitConfig, RateLimitContext, RateLimiter
from edge.state.memory import MemoryStore
from transcoding.descriptors import load_from_file
from transcoding.routes import BackendSource, RouteTable

ROOT = Path(__file__).resolve().parent.parent
DEMO_SET = ROOT / "protos" / "edgedemo" / "descriptors.binpb"
LIB = "edgedemo.library.v1.LibraryService"
USERS = "edgedemo.users.v1.UserService"

# ---- spelling -------------------------------------------------------------------------

CANONICAL = [
    ("*", "*"),
    ("  pkg.Service/Method  ", "pkg.Service/Method"),
    ("pkg.Service/*", "pkg.Service/*"),
    ("pkg.*", "pkg.*"),
    ("pkg.sub.*", "pkg.sub.*"),
    ("*/Create*", "*/Create*"),
    ("pkg.Service/Get*", "pkg.Service/Get*"),
    ("*.v1.*", "*.v1.*"),
    ("/pkg.Service/Method", "pkg.Service/Method"),  # the gRPC wire spelling
    ("/edgedemo.library.v1.LibraryService/*", "edgedemo.library.v1.LibraryService/*"),
    ("GET /v1/users/{user_id}", "GET /v1/users/{user_id}"),
    ("get /v1/users", "GET /v1/users"),
    ("Patch /v1/users/{user.user_id}", "PATCH /v1/users/{user.user_id}"),
    ("*   /v1/users", "* /v1/users"),
    ("REPORT /v1/things", "REPORT /v1/things"),  # a custom verb
    ("POST /v1/*", "POST /v1/*"),
    ("/v1/search*", "/v1/search*"),
    ("/v1/{name=shelves/*}", "/v1/{name=shelves/*}"),
    ("/v1.2/things", "/v1.2/things"),  # '2' is no identifier: a path, not a method
    ("/healthz", "/healthz"),
    ("/v1/books/{id}:archive", "/v1/books/{id}:archive"),
    ("POST /edgedemo.library.v1.LibraryService/ArchiveShelf", "POST /edgedemo.library.v1.LibraryService/ArchiveShelf"),
]

REFUSED = [
    ("", "empty"),
    ("   ", "empty"),
    ("pkg.Service/Get?", "'*' is the only wildcard"),
    ("/v1/[ab]", "'*' is the only wildcard"),
    ("GET /v1 extra", "more than one space"),
    ("GET v1/users", "is not 'VERB /template'"),
    ("G3T /v1/users", "is not 'VERB /template'"),
    ("GET */users", "is not 'VERB /template'"),
    ("pkg.Service", "names no method"),
    ("Library.GetBook", "names no method"),
    ("pkg.Service/Method/More", "neither a gRPC method nor a route"),
    ("pkg-x.Service/Method", "neither a gRPC method nor a route"),
    ("pkg.Service/Me.thod", "neither a gRPC method nor a route"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_spelling(text: str, canonical: str) -> None:
    assert normalize(text) == canonical
    assert normalize(canonical) == canonical  # canonical forms are stable


@pytest.mark.parametrize(("text", "needle"), REFUSED)
def test_refused_with_the_reason(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match="match pattern") as caught:
        normalize(text)
    assert needle in str(caught.value)


# ---- what matches ---------------------------------------------------------------------

GET_SHELF = Target(f"{LIB}/GetShelf", "GET", "/v1/{name=shelves/*}")
CHECK_SHELF = Target(f"{LIB}/CheckShelf", "HEAD", "/v1/{name=shelves/*}")
LIST_SHELVES = Target(f"{LIB}/ListShelves", "GET", "/v1/shelves")
LIST_SHELVES_ALT = Target(f"{LIB}/ListShelves", "GET", "/v1/shelves:list")
CREATE_SHELF = Target(f"{LIB}/CreateShelf", "POST", "/v1/shelves")
CREATE_BOOK = Target(f"{LIB}/CreateBook", "POST", "/v1/{parent=shelves/*}/books")
GET_BOOK = Target(f"{LIB}/GetBook", "GET", "/v1/{name=shelves/*/books/*}")
GET_BOOK_ALT = Target(f"{LIB}/GetBook", "GET", "/v1/books/{book_id}")
MOVE_BOOK = Target(f"{LIB}/MoveBook", "POST", "/v1/{name=shelves/*/books/*}:move")
ARCHIVE = Target(f"{LIB}/ArchiveShelf", "POST", f"/{LIB}/ArchiveShelf")  # the default binding
GET_ME = Target(f"{USERS}/GetMe", "GET", "/v1/users/me")
GET_USER = Target(f"{USERS}/GetUser", "GET", "/v1/users/{user_id}")
UNROUTED = Target("", "GET", "/v1/nowhere")  # a batch item that found no route
FILES = Target("files.v1.Files/Read", "GET", "/v1/files/**")  # a template with wildcard segments

EXACT, GLOB, NO = "exact", "glob", None
MATCHES = [
    ("*", GET_SHELF, GLOB),
    ("*", UNROUTED, GLOB),
    (f"{LIB}/GetShelf", GET_SHELF, EXACT),
    (f"{LIB}/GetShelf", CHECK_SHELF, NO),
    (f"/{LIB}/GetShelf", GET_SHELF, EXACT),
    (f"{LIB}/GetBook", GET_BOOK, EXACT),
    (f"{LIB}/GetBook", GET_BOOK_ALT, EXACT),  # a method covers every binding
    (f"{LIB}/*", GET_SHELF, GLOB),
    (f"{LIB}/*", GET_ME, NO),
    ("edgedemo.*", GET_ME, GLOB),
    ("edgedemo.library.*", GET_ME, NO),
    ("edgedemo.library.*", CREATE_BOOK, GLOB),
    ("edgedemo.library.v1.*", CREATE_BOOK, GLOB),
    ("edgedemo.lib*", CREATE_BOOK, GLOB),
    ("*/Create*", CREATE_BOOK, GLOB),
    ("*/Create*", GET_BOOK, NO),
    (f"{LIB}/Get*", GET_BOOK, GLOB),
    (f"{LIB}/Get*", LIST_SHELVES, NO),
    ("*.v1.*", GET_ME, GLOB),
    ("other.*", GET_ME, NO),
    (f"{LIB}/GetShelf", UNROUTED, NO),
    ("GET /v1/{name=shelves/*}", GET_SHELF, EXACT),
    ("GET /v1/{name=shelves/*}", CHECK_SHELF, NO),  # same template, other verb
    ("HEAD /v1/{name=shelves/*}", CHECK_SHELF, EXACT),
    ("/v1/{name=shelves/*}", CHECK_SHELF, EXACT),
    ("* /v1/{name=shelves/*}", GET_SHELF, EXACT),
    ("GET /v1/{name=shelves/abc}", GET_SHELF, NO),
    ("GET /v1/{name=*}", GET_SHELF, NO),  # inside {...} text is compared as written
    ("GET /v1/{name=*}*", GET_SHELF, NO),  # ... also in a pattern with wildcards outside
    ("/v1/{parent=shelves/*}/*", CREATE_BOOK, GLOB),
    ("/v1/{parent=shelves/*}/*", GET_BOOK, NO),
    ("GET /v1/*", GET_SHELF, GLOB),
    ("GET /v1/*", CREATE_BOOK, NO),
    ("POST /v1/*", CREATE_BOOK, GLOB),
    ("/v1/*", CREATE_BOOK, GLOB),
    ("/v1/*/books", CREATE_BOOK, GLOB),
    ("/v1/*/books", GET_BOOK, NO),
    ("/v1/shelves*", LIST_SHELVES, GLOB),
    ("/v1/shelves*", LIST_SHELVES_ALT, GLOB),
    ("/v1/shelves", LIST_SHELVES_ALT, NO),
    ("/v1/*:move", MOVE_BOOK, GLOB),
    ("/v1/*:move", GET_BOOK, NO),
    ("/v1/users/me", GET_ME, EXACT),
    ("/v1/users/*", GET_ME, GLOB),
    ("/v1/users/*", GET_USER, GLOB),
    ("/v1/users/{user_id}", GET_ME, NO),
    ("/v1/users", GET_USER, NO),
    ("GET /v1/nowhere", UNROUTED, EXACT),
    ("/v1/*", UNROUTED, GLOB),
    (f"POST /{LIB}/ArchiveShelf", ARCHIVE, EXACT),
    (f"/{LIB}/ArchiveShelf", ARCHIVE, EXACT),  # read as the method, which the default binding belongs to
    ("GET /v1/files/**", FILES, EXACT),  # equal to the template: exact, though it holds '*'
    ("GET /v1/files/*", FILES, GLOB),
    ("/v1/*/files/**", FILES, NO),
    ("files.v1.Files/*", FILES, GLOB),
]


@pytest.mark.parametrize(("text", "target", "expected"), MATCHES)
def test_what_matches(text: str, target: Target, expected: str | None) -> None:
    rank = Pattern(text).specificity(target)
    got = None if rank is None else (EXACT if rank[0] == 1 else GLOB)
    assert got == expected
    assert Pattern(text).matches(target) is (expected is not None)


# ---- which pattern wins (sections that pick one rule) ------------------------------------

PRECEDENCE = [
    # the order auth policies always had
    (["*", "edgedemo.*", "edgedemo.library.*", f"{LIB}/*", f"{LIB}/GetShelf", "* /v1/{name=shelves/*}",
      "GET /v1/{name=shelves/*}"], GET_SHELF, "GET /v1/{name=shelves/*}"),
    (["*", "edgedemo.*", "edgedemo.library.*", f"{LIB}/*", f"{LIB}/GetShelf", "* /v1/{name=shelves/*}"],
     GET_SHELF, "* /v1/{name=shelves/*}"),
    (["*", "edgedemo.*", "edgedemo.library.*", f"{LIB}/*", f"{LIB}/GetShelf"], GET_SHELF, f"{LIB}/GetShelf"),
    (["*", "edgedemo.*", "edgedemo.library.*", f"{LIB}/*"], GET_SHELF, f"{LIB}/*"),
    (["*", "edgedemo.*", "edgedemo.library.*"], GET_SHELF, "edgedemo.library.*"),
    (["edgedemo.library.*", "edgedemo.*"], GET_SHELF, "edgedemo.library.*"),  # longest package, whatever the order
    (["*", "edgedemo.*"], GET_SHELF, "edgedemo.*"),
    (["*"], GET_SHELF, "*"),
    # an exact method beats any glob over paths, however long
    (["GET /v1/{name=shelves/*}*", f"{LIB}/GetShelf"], GET_SHELF, f"{LIB}/GetShelf"),
    (["/v1/*", f"{LIB}/GetShelf"], GET_SHELF, f"{LIB}/GetShelf"),
    # globs: the one that spells out more wins
    ([f"{LIB}/*", f"{LIB}/Get*"], GET_BOOK, f"{LIB}/Get*"),
    (["/v1/*", "/v1/*/books"], CREATE_BOOK, "/v1/*/books"),
    (["POST /v1/*", "/v1/{parent=shelves/*}/*"], CREATE_BOOK, "/v1/{parent=shelves/*}/*"),
    (["/v1/*", "edgedemo.*"], GET_SHELF, "edgedemo.*"),  # 'edgedemo.' spells out more than '/v1/'
    (["/v1/users/*", "edgedemo.*"], GET_ME, "/v1/users/*"),
    # equal spelled-out length: a verb beats no verb, which beats a method pattern
    (["/v1/*", "POST /v1/*"], CREATE_BOOK, "POST /v1/*"),
    (["POST /v1/*", "/v1/*"], CREATE_BOOK, "POST /v1/*"),
    (["abcd*", "/v1/*"], Target("abcd/X", "GET", "/v1/x"), "/v1/*"),
    (["/v1/*", "abcd*"], Target("abcd/X", "GET", "/v1/x"), "/v1/*"),
    # a full tie: the rule listed first
    (["*/GetShelf", "edgedemo.*"], GET_SHELF, "*/GetShelf"),
    (["edgedemo.*", "*/GetShelf"], GET_SHELF, "edgedemo.*"),
    # exact: a verb beats any verb, which beats the method
    ([f"{LIB}/CheckShelf", "/v1/{name=shelves/*}", "HEAD /v1/{name=shelves/*}"], CHECK_SHELF,
     "HEAD /v1/{name=shelves/*}"),
    ([f"{LIB}/CheckShelf", "/v1/{name=shelves/*}"], CHECK_SHELF, "/v1/{name=shelves/*}"),
    # nothing matches
    ([f"{USERS}/*", "GET /v1/users"], GET_SHELF, None),
]


@pytest.mark.parametrize(("patterns", "target", "winner"), PRECEDENCE)
def test_most_specific_wins(patterns: list[str], target: Target, winner: str | None) -> None:
    one_rule_each = Matcher(([p], p) for p in patterns)
    found = one_rule_each.best(target)
    assert (found[1] if found else None) == winner
    # the same patterns in one rule: that rule, chosen by the same pattern
    together = Matcher([(patterns, "rule")]).best(target)
    assert (together[0].text if together else None) == winner


def test_sections_that_apply_every_match_get_them_in_config_order() -> None:
    rules = Matcher([(["POST /v1/*"], "writes"), (["*"], "all"), ([f"{LIB}/*"], "library"), ([f"{USERS}/*"], "users"),
                     (["/v1/*/books", "*/Create*"], "books")])
    assert rules.all(CREATE_BOOK) == ["writes", "all", "library", "books"]
    assert rules.all(GET_ME) == ["all", "users"]
    assert rules.any(GET_ME) and not Matcher([([f"{USERS}/*"], 1)]).any(GET_SHELF)
    assert not Matcher([]) and Matcher([(["*"], 1)])


def test_target_from_a_route_id() -> None:
    assert Target.of_route_id("POST /v1/orders", "post", "shop.v1.Shop/Order") == Target("shop.v1.Shop/Order", "POST",
                                                                                         "/v1/orders")
    assert Target.of_route_id("/v1/orders", "post") == Target("", "POST", "/v1/orders")


# ---- every section uses it ------------------------------------------------------------------


def test_auth_policies_take_one_pattern_or_a_list() -> None:
    config = AuthConfig.model_validate({"policies": [
        {"match": "*", "auth": "optional"},
        {"match": [f"/{LIB}/GetShelf", "get /v1/users/me"], "auth": "none"},
        {"match": ["POST /v1/*", "*/Update*"], "scopes_all_of": ["write"]},
        {"match": f"{LIB}/CreateShelf", "scopes_all_of": ["shelves"]},
    ]})
    assert config.policies[1].match == [f"{LIB}/GetShelf", "GET /v1/users/me"]
    resolver = PolicyResolver(config)

    def resolve(t: Target):
        p = resolver.resolve(t.full_method, t.http_method, t.template)
        return p.auth, sorted(p.scopes_all_of), p.source

    assert resolve(GET_SHELF) == ("none", [], f"config:{LIB}/GetShelf")
    assert resolve(GET_ME) == ("none", [], "config:GET /v1/users/me")
    assert resolve(CREATE_BOOK) == ("required", ["write"], "config:POST /v1/*")
    assert resolve(CREATE_SHELF) == ("required", ["shelves"], f"config:{LIB}/CreateShelf")
    assert resolve(Target(f"{USERS}/UpdateUser", "PATCH", "/v1/users/{user.user_id}"))[2] == "config:*/Update*"
    assert resolve(GET_BOOK) == ("optional", [], "config:*")
    # without a route (OpenAPI asks by method only) the method patterns still decide
    assert resolver.resolve(f"{LIB}/GetShelf").source == f"config:{LIB}/GetShelf"
    assert resolver.resolve(f"{LIB}/CreateBook").source == "config:*"


@pytest.mark.parametrize(("policies", "needle"), [
    ([{"match": "a.B/*"}, {"match": ["x.Y/Z", "a.B/*"], "auth": "none"}], "more than once"),
    ([{"match": "GET /v1/x"}, {"match": "get /v1/x"}], "more than once"),  # the same once spelled canonically
    ([{"match": []}], "empty list"),
    ([{"match": "a.B"}], "names no method"),
    ([{"match": "GET /v1/x?y"}], "only wildcard"),
])
def test_auth_policy_patterns_refused(policies, needle) -> None:
    with pytest.raises(ValidationError) as caught:
        AuthConfig.model_validate({"policies": policies})
    assert needle in str(caught.value)


def test_rate_limits_apply_every_matching_policy_and_honour_exempt() -> None:
    config = RateLimitConfig.model_validate({
        "exempt": [f"{USERS}/GetMe", "/v1/shelves*"],
        "policies": [
            {"name": "all", "limit": 100, "window": "1m"},
            {"name": "writes", "limit": 100, "window": "1m", "match": "POST /v1/*"},
            {"name": "books", "limit": 100, "window": "1m", "match": ["/v1/*/books", "*/GetBook"]},
            {"name": "library", "limit": 100, "window": "1m", "match": [f"/{LIB}/*"]},
        ]})
    assert config.policies[3].match == [f"{LIB}/*"]
    limiter = RateLimiter(config, MemoryStore())

    def applied(t: Target) -> list[str]:
        ctx = RateLimitContext("ada", None, "192.0.2.1", t.template, method=t.full_method, http_method=t.http_method)
        decision = asyncio.run(limiter.check(ctx))
        return [p.name for p in decision.policies_applied] if decision.store_status != "exempt" else ["exempt"]

    assert applied(CREATE_BOOK) == ["all", "writes", "books", "library"]
    assert applied(GET_BOOK_ALT) == ["all", "books", "library"]
    assert applied(GET_USER) == ["all"]
    assert applied(GET_ME) == ["exempt"]
    assert applied(LIST_SHELVES) == applied(LIST_SHELVES_ALT) == applied(CREATE_SHELF) == ["exempt"]
    assert applied(UNROUTED) == ["all"]


def test_idempotency_route_rules_most_specific_wins() -> None:
    config = IdempotencyConfig.model_validate({"methods": ["POST", "PATCH"], "routes": [
        {"match": "/v1/*", "enabled": False},
        {"match": ["POST /v1/{parent=shelves/*}/books"], "require": True},
        {"match": [f"{LIB}/MoveBook"], "methods": ["DELETE"]},
        {"match": "*/Update*", "require": True},
    ]})
    engine = IdempotencyEngine(config, MemoryStore())

    def rule(t: Target) -> tuple[bool, bool]:
        r = engine.rule_for(f"{t.http_method} {t.template}", t.http_method, t.full_method)
        return r.applies, r.require

    # listed after the catch-all, and still chosen: it is more specific (first-match would have disabled it)
    assert rule(CREATE_BOOK) == (True, True)
    assert rule(CREATE_SHELF) == (False, False)            # '/v1/*' turns it off
    assert rule(MOVE_BOOK) == (False, False)               # its exact rule covers DELETE only
    # '*/Update*' spells out more than '/v1/*': it wins
    assert rule(Target(f"{USERS}/UpdateUser", "PATCH", "/v1/users/{user.user_id}")) == (True, True)
    assert rule(ARCHIVE) == (True, False)                  # no rule: the default methods
    assert engine.rule_for("POST /v1/batch", "POST") == engine.rule_for("POST /v1/batch", "POST")


def test_compression_opt_out_in_the_same_syntax() -> None:
    config = CompressionConfig(opt_out=["/v1/{name=shelves/*/books/*}/cover", "HEAD /v1/*", f"{USERS}/*"])
    assert config.route_opted_out(f"{LIB}/GetBookCover", "/v1/{name=shelves/*/books/*}/cover", "GET")
    assert config.route_opted_out(CHECK_SHELF.full_method, CHECK_SHELF.template, "HEAD")
    assert not config.route_opted_out(GET_SHELF.full_method, GET_SHELF.template, "GET")
    assert config.route_opted_out(GET_ME.full_method, GET_ME.template, "GET")
    assert config.route_opted_out(GET_ME.full_method, None)
    assert not config.route_opted_out(None, None)


# ---- edge check: patterns that match no route of real descriptors ------------------------


@pytest.fixture(scope="module")
def demo_table() -> RouteTable:
    async def build() -> RouteTable:
        channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never called: a table needs a channel, not a backend
        table, problems = RouteTable.build([BackendSource("demo", load_from_file(DEMO_SET), channel)])
        assert problems == []
        await channel.close()
        return table

    return asyncio.run(build())


def _config(**sections) -> GatewayConfig:
    return GatewayConfig.model_validate({"listen": {"plaintext": True},
                                         "backends": [{"name": "demo", "target": "127.0.0.1:1",
                                                       "descriptors": str(DEMO_SET)}], **sections})


def test_check_is_quiet_when_every_pattern_matches_a_route(demo_table) -> None:
    config = _config(
        auth={"policies": [{"match": "*"}, {"match": "edgedemo.*"}, {"match": f"{LIB}/*"}, {"match": f"/{LIB}/GetBook"},
                           {"match": ["GET /v1/{name=shelves/*}", "HEAD /v1/{name=shelves/*}"]},
                           {"match": "/v1/users/me"}, {"match": f"POST /{LIB}/ArchiveShelf"}]},
        rate_limits={"exempt": ["/healthz", f"{USERS}/GetMe"], "policies": [
            {"name": "a", "limit": 1, "window": "1s"},
            {"name": "b", "limit": 1, "window": "1s", "match": ["POST /v1/*", "*/Create*", "/v1/*:move"]}]},
        idempotency={"routes": [{"match": "POST /v1/batch", "require": True},  # the batch endpoint counts
                                {"match": ["/v1/*/books", "PATCH /v1/users/*"]}]},
        compression={"opt_out": ["/v1/{name=shelves/*/books/*}/cover", f"{LIB}/StreamBooks"]},
        cors={"routes": [{"match": ["GET /v1/users/*", f"{USERS}/*"], "allow_origins": ["*"]}]},
    )
    assert unmatched_patterns(config, demo_table) == []


def test_check_reports_every_section(demo_table) -> None:
    config = _config(
        auth={"policies": [{"match": f"{LIB}/GetShelff"}, {"match": ["edgedemo.nope.v1.Gone/*", f"{LIB}/*"]},
                           {"match": "PUT /v1/users/{user_id}"}, {"match": "edgedemo.shop.*"}]},
        rate_limits={"exempt": ["/healthz", "/readyz", "/v1/nothing"], "policies": [
            {"name": "a", "limit": 1, "window": "1s", "match": ["DELETE /v1/users/*", "*/Frobnicate*"]}]},
        idempotency={"routes": [{"match": ["POST /v1/orders", "POST /v1/{parent=shelves/*}/books"]},
                                {"match": "/v1/batch"}]},
        compression={"opt_out": ["/v1/{name=shelves/*}/cover", f"{USERS}/Export"]},
        cors={"routes": [{"match": "/v1/users/me", "allow_origins": []}, {"match": "PUT /v1/shelves"}]},
        batch=None,  # without the batch endpoint, '/v1/batch' names nothing
    )
    assert unmatched_patterns(config, demo_table) == [
        f"auth.policies.0.match: '{LIB}/GetShelff' names no method of {LIB}",
        "auth.policies.1.match: 'edgedemo.nope.v1.Gone/*' names service edgedemo.nope.v1.Gone, which no backend serves",
        "auth.policies.2.match: 'PUT /v1/users/{user_id}' matches no route: /v1/users/{user_id} is served only for GET",
        "auth.policies.3.match: 'edgedemo.shop.*' matches no route of the loaded descriptors",
        "rate_limits.policies.0.match: 'DELETE /v1/users/*' matches no route: /v1/users/* is served only for GET, PATCH",
        "rate_limits.policies.0.match: '*/Frobnicate*' matches no route of the loaded descriptors",
        "rate_limits.exempt: '/v1/nothing' matches no route of the loaded descriptors",
        "idempotency.routes.0.match: 'POST /v1/orders' matches no route of the loaded descriptors",
        "idempotency.routes.1.match: '/v1/batch' matches no route of the loaded descriptors",
        "compression.opt_out: '/v1/{name=shelves/*}/cover' matches no route of the loaded descriptors",
        f"compression.opt_out: '{USERS}/Export' names no method of {USERS}",
        "cors.routes.1.match: 'PUT /v1/shelves' matches no route: /v1/shelves is served only for GET, POST",
    ]


def test_edge_check_command_prints_them(tmp_path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(f"""
listen: {{plaintext: true}}
backends: [{{name: demo, target: '127.0.0.1:1', descriptors: {DEMO_SET}}}]
auth:
  policies: [{{match: "GET /v1/users/me", auth: none}}, {{match: "GET /v1/me", auth: none}}]
rate_limits:
  policies: [{{name: writes, limit: 1, window: 1s, match: "PUT /v1/*"}}]
idempotency:
  routes: [{{match: ["POST /v1/orders"], require: true}}]
compression:
  opt_out: ["{LIB}/GetBookCover", "{LIB}/GetCover"]
""")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    assert problems == [
        "problem: auth.policies.1.match: 'GET /v1/me' matches no route of the loaded descriptors",
        "problem: rate_limits.policies.0.match: 'PUT /v1/*' matches no route: /v1/* is served only for "
        "DELETE, GET, HEAD, PATCH, POST",
        "problem: idempotency.routes.0.match: 'POST /v1/orders' matches no route of the loaded descriptors",
        f"problem: compression.opt_out: '{LIB}/GetCover' names no method of {LIB}",
    ]
    assert "4 problem(s) found" in result.stderr
