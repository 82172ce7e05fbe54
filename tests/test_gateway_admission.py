"""A keyed POST through the real gateway: its rate limits and its Idempotency-Key reservation in
one Redis round trip, and the reservation gone whenever the request is refused (docs/state.md,
"Admission"). Redis is a private server, so the commands it counts are this gateway's alone."""
from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.gateway import gateway_config, running_gateway

BOOKS = "/v1/shelves/scifi/books"


def _evalsha(server) -> int:
    with server.client() as c:
        return c.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def _records(server) -> list[bytes]:
    with server.client() as c:
        return sorted(c.scan_iter(match="edge:*:idem"))


@pytest.fixture(params=["memory", "redis"])
def keyed(request, demo_backend):
    """(client, private Redis or None) for a gateway allowing 3 POSTs a minute per caller."""
    redis = request.getfixturevalue("private_redis") if request.param == "redis" else None
    store = {"backend": "redis", "redis": {"url": redis.url, "timeout": "2s"}} if redis else {"backend": "memory"}
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        store=store,
        rate_limits={"policies": [{"name": "writes", "limit": 3, "window": "1m", "key": "ip", "match": ["POST /v1/*"]}]},
        idempotency={},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client, redis


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit"].split(";r=")[1].split(";")[0])


def test_a_keyed_post_is_one_round_trip_before_the_call_and_a_replay_one_unit(keyed, demo_backend):
    client, redis = keyed
    key = {"idempotency-key": uuid.uuid4().hex}
    before = _evalsha(redis) if redis else 0
    first = client.post(BOOKS, json={"title": "Once"}, headers=key)
    assert first.status_code == 200 and _remaining(first) == 2
    if redis:
        assert _evalsha(redis) - before == 2  # admission (limits + reservation), then the stored response
        before = _evalsha(redis)
    again = client.post(BOOKS, json={"title": "Once"}, headers=key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert _remaining(again) == 1  # the replay is charged one unit, as any request; never two
    if redis:
        assert _evalsha(redis) - before == 1
    assert demo_backend.recorder.calls["CreateBook"] == 1


def test_a_429_leaves_no_reservation(keyed, demo_backend):
    client, redis = keyed
    for _ in range(3):
        assert client.post(BOOKS, json={"title": "t"}, headers={"idempotency-key": uuid.uuid4().hex}).status_code == 200
    records = _records(redis) if redis else None
    refused = client.post(BOOKS, json={"title": "late"}, headers={"idempotency-key": "refused-" + uuid.uuid4().hex})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    if redis:
        assert _records(redis) == records  # no record was written for the refused key
    assert demo_backend.recorder.calls["CreateBook"] == 3


def test_a_body_that_does_not_decode_gives_the_key_back(keyed, demo_backend):
    """Admitted (charged, key reserved), then the body fails to decode: 400, and the key is
    released, so the corrected request under the same key runs (not 409, not 422)."""
    client, redis = keyed
    key = {"idempotency-key": uuid.uuid4().hex, "content-type": "application/json"}
    records = _records(redis) if redis else None
    bad = client.post(BOOKS, content=b'{"title": 7, "pageCount": "many"}', headers=key)
    assert bad.status_code == 400 and bad.json()["code"] == 3
    if redis:
        assert _records(redis) == records
    fixed = client.post(BOOKS, json={"title": "Fixed"}, headers=key)
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers
    assert _remaining(fixed) == 1  # the 400 was admitted, so charged
    assert demo_backend.recorder.calls["CreateBook"] == 1


def test_a_bad_key_is_refused_after_the_charge_as_before(keyed, demo_backend):
    client, _ = keyed
    bad = client.post(BOOKS, json={"title": "x"}, headers={"idempotency-key": "x" * 300})
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["message"]
    assert demo_backend.recorder.calls["CreateBook"] == 0
    assert _remaining(client.post(BOOKS, json={"title": "y"})) == 1  # the 400 came after its charge


def test_a_keyed_batch_charges_its_items_and_reserves_in_one_round_trip(keyed, demo_backend):
    client, redis = keyed
    key = {"idempotency-key": "batch-" + uuid.uuid4().hex}
    items = {"requests": [{"id": f"b{i}", "method": "POST", "url": BOOKS, "body": {"title": f"B{i}"}} for i in range(2)]}
    before = _evalsha(redis) if redis else 0
    first = client.post("/v1/batch", json=items, headers=key)
    assert first.status_code == 200 and [r["status"] for r in first.json()["responses"]] == [200, 200]
    assert _remaining(first) == 1  # two units, one per item
    if redis:
        assert _evalsha(redis) - before == 2  # admission (both items' units + the batch's key), then its record
    records = _records(redis) if redis else None
    refused = client.post("/v1/batch", json=items, headers={"idempotency-key": "batch-" + uuid.uuid4().hex})
    assert refused.status_code == 429
    if redis:
        assert _records(redis) == records  # the refused batch's key was not reserved
    again = client.post("/v1/batch", json={"requests": items["requests"][:1]}, headers=key)
    assert again.status_code == 422  # the first batch's record, not the refused one's
    assert demo_backend.recorder.calls["CreateBook"] == 2
