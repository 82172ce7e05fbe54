"""The Idempotency-Key engine against the memory store and a real Redis."""
from __future__ import annotations

import asyncio

import orjson
import pytest
from pydantic import ValidationError

from edge.idempotency import (BeginState, IdempotencyConfig, IdempotencyEngine, IdempotencyKeyInvalid,
                              IdempotencyKeyRequired, IdempotencyUnavailable, StoredResponse, backend_key,
                              fingerprint)
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.redis_store import RedisStore
from tests.support.redis import run_closing as run

ROUTE = "/v1/orders"  # the route template; the HTTP method is passed on its own
BODY = b'{"item": "book", "qty": 2}'
CREATED = StoredResponse(201, [("content-type", "application/json"), ("x-internal", "secret"),
                               ("grpc-metadata-order-id", "o-1")], b'{"id": "o-1"}')


def engine(store, **config) -> IdempotencyEngine:
    return IdempotencyEngine(IdempotencyConfig(**config), store)


def begin(eng, key, *, principal="alice", body=BODY, route=ROUTE, method="POST", query="a=1", headers=None,
          **kw):
    return eng.begin(principal, route, key, method, "/v1/orders", query, body, headers or {}, **kw)


def test_first_runs_then_replays_without_running(state_store):
    eng = engine(state_store)

    async def body():
        b = await begin(eng, "k-1")
        assert b.state is BeginState.PROCEED and b.active
        assert b.metadata() == [("idempotency-key", backend_key("alice", ROUTE, "k-1"))]
        assert await b.finish(CREATED)
        for _ in range(2):
            r = await begin(eng, "k-1")
            assert r.state is BeginState.REPLAY and r.error() is None
            assert r.stored_response.status == 201 and r.stored_response.body == b'{"id": "o-1"}'
            headers = r.replay_headers()
            assert ("Idempotent-Replayed", "true") in headers
            assert ("grpc-metadata-order-id", "o-1") in headers and ("content-type", "application/json") in headers
            assert all(k != "x-internal" for k, _ in headers)  # only the configured headers are kept
            assert r.metadata() == []
        assert eng.counters.outcomes["new"] == 1 and eng.counters.outcomes["replayed"] == 2
    run(state_store, body)


def test_errors_are_stored_and_replayed_too(state_store):
    eng = engine(state_store)

    async def body():
        b = await begin(eng, "k-err")
        await b.finish(StoredResponse(409, [("content-type", "application/json")], b'{"code": 6}'))
        r = await begin(eng, "k-err")
        assert r.state is BeginState.REPLAY and r.stored_response.status == 409
    run(state_store, body)


def test_same_key_different_request_is_422(state_store):
    eng = engine(state_store)

    async def body():
        await (await begin(eng, "k-2")).finish(CREATED)
        for variant in [dict(body=b'{"item": "book", "qty": 3}'), dict(query="a=2"), dict(method="PATCH")]:
            r = await begin(eng, "k-2", **variant)
            assert r.state is BeginState.MISMATCH
            err = r.error()
            assert err.http_status == 422 and err.body()["code"] == 3
            assert "different request" in err.message
    run(state_store, body)


def test_canonical_json_and_query_order_do_not_matter(state_store):
    eng = engine(state_store)

    async def body():
        await (await begin(eng, "k-3", query="b=2&a=1")).finish(CREATED)
        r = await begin(eng, "k-3", body=b'{ "qty":2,\n "item":"book" }', query="a=1&b=2")
        assert r.state is BeginState.REPLAY
    run(state_store, body)


def test_in_flight_is_409_with_retry_after(state_store):
    eng = engine(state_store)

    async def body():
        first = await begin(eng, "k-4", deadline=5)
        second = await begin(eng, "k-4", deadline=5)
        assert second.state is BeginState.CONFLICT_IN_FLIGHT
        err = second.error()
        assert err.http_status == 409 and err.body()["code"] == 10  # ABORTED
        assert 1 <= int(err.headers["Retry-After"]) <= 6  # follows the lock: deadline + margin
        assert any(d["@type"].endswith("RetryInfo") for d in err.details)
        await first.finish(CREATED)
        assert (await begin(eng, "k-4")).state is BeginState.REPLAY
    run(state_store, body)


def test_principals_and_routes_do_not_share_keys(state_store):
    eng = engine(state_store)

    async def body():
        await (await begin(eng, "same-key", principal="alice")).finish(CREATED)
        bob = await begin(eng, "same-key", principal="bob")
        assert bob.state is BeginState.PROCEED  # bob never sees alice's response
        assert bob.backend_key != backend_key("alice", ROUTE, "same-key")
        other_route = await begin(eng, "same-key", principal="alice", route="/v1/payments")
        assert other_route.state is BeginState.PROCEED
        anonymous = await begin(eng, "same-key", principal=None)
        assert anonymous.state is BeginState.PROCEED
    run(state_store, body)


def test_abandon_when_not_sent_frees_the_key(state_store):
    eng = engine(state_store)

    async def body():
        b = await begin(eng, "k-5")
        assert await b.abandon(proven_not_sent=True)
        again = await begin(eng, "k-5", body=b'{"other": true}')  # even a different request may use it now
        assert again.state is BeginState.PROCEED
    run(state_store, body)


def test_unknown_outcome_lets_the_retry_run_again_with_the_same_backend_key(state_store):
    eng = engine(state_store)

    async def body():
        b = await begin(eng, "k-6")
        assert await b.abandon(proven_not_sent=False)
        retry = await begin(eng, "k-6")
        assert retry.state is BeginState.PROCEED and retry.backend_key == b.backend_key
        assert (await begin(eng, "k-6", body=b"{}")).state is BeginState.MISMATCH  # still bound to the request
        await retry.finish(CREATED)
        assert (await begin(eng, "k-6")).state is BeginState.REPLAY
    run(state_store, body)


def test_finish_and_abandon_only_once(state_store):
    eng = engine(state_store)

    async def body():
        b = await begin(eng, "k-7")
        assert await b.finish(CREATED)
        assert not await b.finish(StoredResponse(500))
        assert not await b.abandon(True)
        assert (await begin(eng, "k-7")).stored_response.status == 201
    run(state_store, body)


def test_large_responses_store_only_the_outcome(state_store):
    eng = engine(state_store, max_response_bytes=100)

    async def body():
        b = await begin(eng, "k-8")
        await b.finish(StoredResponse(200, [("content-type", "application/json")], b"x" * 101))
        r = await begin(eng, "k-8")
        assert r.state is BeginState.REPLAY
        assert r.stored_response.status == 200 and r.stored_response.body == b""
        assert r.stored_response.body_omitted
        assert ("Idempotent-Replay-Body-Omitted", "true") in r.replay_headers()
    run(state_store, body)


@pytest.mark.parametrize("raw, message", [
    ("", "is empty"),
    ('""', "is empty"),
    ("x" * 256, "256 characters long; at most 255"),
    ("has space", "position 3"),
    ("tab\tkey", "not allowed"),
    ("ключ", "position 0"),
])
def test_malformed_keys_are_400(state_store, raw, message):
    eng = engine(state_store)

    async def body():
        with pytest.raises(IdempotencyKeyInvalid, match=message) as info:
            await begin(eng, raw)
        assert info.value.http_status == 400 and info.value.body()["code"] == 3
        violation = info.value.details[0]["fieldViolations"][0]
        assert violation["field"] == "Idempotency-Key"
    run(state_store, body)


def test_quoted_structured_field_key_is_the_same_key(state_store):
    eng = engine(state_store)

    async def body():
        await (await begin(eng, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')).finish(CREATED)
        assert (await begin(eng, "8e03978e-40d5-43e8-bc93-6894a57f9324")).state is BeginState.REPLAY
        assert (await begin(eng, "x" * 255)).state is BeginState.PROCEED
    run(state_store, body)


def test_methods_routes_and_require(state_store):
    eng = engine(state_store, routes=[
        {"match": ["POST /v1/orders"], "require": True},
        {"match": ["/v1/search"], "enabled": False},
        {"match": ["shop.v1.Shop/Reset*"], "methods": ["DELETE"]},
    ])

    async def body():
        with pytest.raises(IdempotencyKeyRequired, match="requires an Idempotency-Key") as info:
            await begin(eng, None)
        assert info.value.http_status == 400
        plain = await eng.begin("a", "/v1/other", None, "POST", "/v1/other", "", b"", {})
        assert plain.state is BeginState.PROCEED and not plain.active  # optional: no key, no record
        get = await eng.begin("a", "/v1/orders", "k", "GET", "/v1/orders", "", b"", {})
        assert not get.active  # GET is not covered by default
        search = await eng.begin("a", "/v1/search", "k", "POST", "/v1/search", "", b"", {})
        assert not search.active
        reset = await eng.begin("a", "/v1/all", "k", "DELETE", "/v1/all", "", b"", {},
                                grpc_method="shop.v1.Shop/ResetAll")
        assert reset.active
        patch = await eng.begin("a", "/v1/x", "k", "PATCH", "/v1/x", "", b"{}", {})
        assert patch.active
    run(state_store, body)


def test_fingerprint_headers(state_store):
    eng = engine(state_store, fingerprint_headers=["X-Tenant"])

    async def body():
        await (await begin(eng, "k-9", headers={"x-tenant": "t1", "user-agent": "a"})).finish(CREATED)
        assert (await begin(eng, "k-9", headers={"X-Tenant": "t1", "user-agent": "b"})).state is BeginState.REPLAY
        assert (await begin(eng, "k-9", headers={"x-tenant": "t2"})).state is BeginState.MISMATCH
        assert (await begin(eng, "k-9", headers={})).state is BeginState.MISMATCH
    run(state_store, body)


def test_lock_ttl_follows_the_deadline(state_store):
    eng = engine(state_store, lock_margin=0.05)

    async def body():
        b = await begin(eng, "k-10", deadline=0.05)
        assert eng.lock_ttl(0.05) == pytest.approx(0.1)
        assert (await begin(eng, "k-10")).state is BeginState.CONFLICT_IN_FLIGHT
        await asyncio.sleep(0.2)  # the gateway "died": its marker expired with the deadline
        taken_over = await begin(eng, "k-10")
        assert taken_over.state is BeginState.PROCEED
        assert not await b.abandon(proven_not_sent=True)  # the dead request cannot free the new owner's key
        assert (await begin(eng, "k-10")).state is BeginState.CONFLICT_IN_FLIGHT
    run(state_store, body)


def test_fingerprint_is_canonical_and_length_prefixed():
    a = fingerprint("post", "/p", "b=2&a=1", b'{"x":1,"y":[1,2]}', {})
    assert a == fingerprint("POST", "/p", [("a", "1"), ("b", "2")], b'{"y":[1,2], "x":1}', {})
    assert a == fingerprint("POST", "/p", {"a": "1", "b": ["2"]}, b'{"y":[1,2], "x":1}', {})
    assert a != fingerprint("POST", "/p", "a=1&b=2&b=2", b'{"x":1,"y":[1,2]}', {})
    assert fingerprint("POST", "/p", "", b"not json", {}) != fingerprint("POST", "/p", "", b"not  json", {})
    assert fingerprint("POST", "/ab", "c=", b"", {}) != fingerprint("POST", "/a", "bc=", b"", {})
    assert backend_key("a|b", "c", "d") != backend_key("a", "b|c", "d")


def test_record_round_trip():
    from edge.idempotency import decode_record, encode_record
    r = StoredResponse(200, [("content-type", "application/octet-stream")], b"\n\x00binary\nbody")
    assert decode_record(encode_record(r)) == r
    assert orjson.loads(encode_record(r).partition(b"\n")[0])["s"] == 200


def test_store_down_fails_closed(unused_port):
    """No Redis: routes that require a key, and by default any request with a key, get 503."""
    store = RedisStore(RedisConfig(url=f"redis://127.0.0.1:{unused_port}/0",
                                   breaker=BreakerConfig(failure_threshold=1, open_for=30)))
    eng = engine(store, routes=[{"match": ["POST /v1/orders"], "require": True}])
    lenient = engine(store, on_store_failure="proceed")

    async def body():
        with pytest.raises(IdempotencyUnavailable) as info:
            await begin(eng, "k")
        assert info.value.http_status == 503 and info.value.body()["code"] == 14
        assert info.value.headers["Retry-After"] == "1"
        with pytest.raises(IdempotencyUnavailable):
            await eng.begin("a", "/v1/other", "k", "POST", "/v1/other", "", b"", {})
        # a route that does not require keys may be configured to run unprotected instead
        b = await lenient.begin("a", "/v1/other", "k", "POST", "/v1/other", "", b"", {})
        assert b.state is BeginState.PROCEED and not b.active and b.metadata()
        with pytest.raises(IdempotencyUnavailable):  # ...but never a route that requires them
            await begin(lenient.__class__(IdempotencyConfig(routes=[{"match": ["*"], "require": True}],
                                                            on_store_failure="proceed"), store), "k")
        assert store.stats.fast_failures >= 2  # the breaker answered without waiting
    run(store, body)


def test_invalid_config_is_refused():
    with pytest.raises(ValidationError, match="not HTTP methods"):
        IdempotencyConfig(methods=["POST", "post it"])
    with pytest.raises(ValidationError, match="not a valid regex"):
        IdempotencyConfig(key_pattern="[a-")
    with pytest.raises(ValidationError, match="Extra inputs"):
        IdempotencyConfig(retention="1h", rentention="2h")


def test_route_ids_may_carry_the_http_method(state_store):
    eng = engine(state_store, routes=[{"match": ["POST /v1/orders"], "require": True},
                                      {"match": ["/v1/search"], "enabled": False}])

    async def body():
        with pytest.raises(IdempotencyKeyRequired):
            await eng.begin("a", "POST /v1/orders", None, "POST", "/v1/orders", "", b"", {})
        assert not (await eng.begin("a", "POST /v1/search", "k", "POST", "/v1/search", "", b"", {})).active
    run(state_store, body)
