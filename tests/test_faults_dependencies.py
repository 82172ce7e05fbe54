"""What the gateway depends on besides its backends, failing under a real gateway:
Redis killed and restarted, the JWKS endpoint down, certificate files replaced with
garbage. Each time: the failure mode the config promises, no 500 and no crash, and
recovery without a restart.
"""
from __future__ import annotations

import hashlib
import socket
import ssl
import time
import uuid

import httpx
import pytest

from edge.devcert import ensure_dev_certificate, generate_certificate, write_atomically
from tests.support.auth import bearer, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for

LIB = "edgedemo.library.v1.LibraryService"



# ---- Redis killed and restarted ------------------------------------------------------------


@pytest.fixture
def redis_gateway(demo_backend, private_redis):
    config = gateway_config(
        # short deadlines: after Redis restarts empty, keyed requests wait out the longest lock (2 s + 1 s)
        [{"name": "demo", "target": demo_backend.target, "timeout": "2s", "max_timeout": "2s"}],
        batch={"max_timeout": "2s"},
        store={"backend": "redis", "redis": {"url": private_redis.url, "key_prefix": "faults", "timeout": "200ms",
                                             "breaker": {"failure_threshold": 1, "open_for": "300ms"}}},
        rate_limits={"instances": 2, "policies": [
            {"name": "reads", "limit": 6, "window": "1h", "key": "ip", "match": ["GET /v1/*"]},  # degrade (default)
            {"name": "writes", "limit": 100, "window": "1h", "key": "ip", "match": ["POST /v1/shelves"],
             "on_store_failure": "closed"},
        ]},
        idempotency={"routes": [{"match": ["POST /v1/{parent=shelves/*}/books"], "require": True}]},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client, private_redis


def test_redis_killed_and_restarted(redis_gateway, demo_backend):
    client, redis = redis_gateway
    key = {"idempotency-key": uuid.uuid4().hex}
    assert client.get("/v1/shelves/scifi").headers["ratelimit"].startswith('"reads";r=5;')
    first = client.post("/v1/shelves/scifi/books", json={"title": "Before"}, headers=key)
    assert first.status_code == 200

    redis.kill()
    # Degrade: each of the 2 instances enforces its share (6 / 2 = 3) on its own.
    reads = [client.get("/v1/shelves/scifi").status_code for _ in range(5)]
    assert reads == [200, 200, 200, 429, 429], reads
    # Fail closed where the policy says so, with a clear 503.
    closed = client.post("/v1/shelves", json={"theme": "t"})
    assert closed.status_code == 503 and closed.json()["code"] == 14
    assert closed.headers["retry-after"] == "1"
    # A route that requires keys cannot promise exactly-once without the store: 503, backend untouched.
    before = demo_backend.recorder.calls["CreateBook"]
    keyed = client.post("/v1/shelves/scifi/books", json={"title": "During"}, headers={"idempotency-key": uuid.uuid4().hex})
    assert keyed.status_code == 503 and keyed.json()["code"] == 14
    assert demo_backend.recorder.calls["CreateBook"] == before
    assert client.get("/healthz").status_code == 200

    redis.start()  # an empty Redis on the same port: no scripts loaded, no counters
    assert wait_for(lambda: client.post("/v1/shelves", json={"theme": "t"}).status_code == 200)
    again = client.get("/v1/shelves/scifi")
    assert again.status_code == 200 and again.headers["ratelimit"].startswith('"reads";r=')
    # The gateway noticed the restart (a new run_id, no AOF): locks of calls still running may be
    # gone, so keyed requests wait out the longest lock before they run again.
    key = {"idempotency-key": uuid.uuid4().hex}
    held = client.post("/v1/shelves/scifi/books", json={"title": "After"}, headers=key)
    assert held.status_code == 503 and held.headers["retry-after"] in ("1", "2", "3"), held.headers
    assert held.json()["details"][-1]["reason"] == "IDEMPOTENCY_STORE_RECOVERING"
    assert wait_for(lambda: client.post("/v1/shelves/scifi/books", json={"title": "After"}, headers=key).status_code
                    == 200, timeout=10)
    retry = client.post("/v1/shelves/scifi/books", json={"title": "After"}, headers=key)
    assert retry.status_code == 200
    replay = client.post("/v1/shelves/scifi/books", json={"title": "After"}, headers={"idempotency-key": retry.request.headers["idempotency-key"]})
    assert replay.headers.get("idempotent-replayed") == "true" and replay.content == retry.content


def test_hung_redis_costs_at_most_a_timeout(redis_gateway):
    client, redis = redis_gateway
    assert client.get("/v1/shelves/scifi").status_code == 200
    redis.pause()  # SIGSTOP: connections open, nothing answers
    try:
        started = time.monotonic()
        statuses = [client.get("/v1/shelves/history").status_code for _ in range(10)]
        elapsed = time.monotonic() - started
        # Every call is decided in this process (degrade): this instance's share of 6 is 3.
        assert statuses == [200] * 3 + [429] * 7, statuses
        assert elapsed < 5  # the breaker opens after one timeout instead of every call waiting
    finally:
        redis.resume()
    assert wait_for(lambda: client.post("/v1/shelves", json={"theme": "t"}).status_code == 200)


# ---- the JWKS endpoint down ----------------------------------------------------------------


@pytest.fixture
def jwks_gateway(demo_backend, idp):
    issuer = issuer_config(idp, jwks_refresh_interval=0.3, jwks_max_age_bounds=(0.1, 1), jwks_min_fetch_interval=0.1,
                           jwks_negative_cache_ttl=0.2, jwks_grace_period=3600)
    config = gateway_config([{"name": "demo", "target": demo_backend.target}],
                            auth={"issuers": [issuer], "policies": [{"match": f"{LIB}/*", "scopes_all_of": ["library.read"]}]},
                            access_log={"enabled": False})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client


def test_jwks_down_cached_keys_serve(jwks_gateway, idp, auth_keys):
    client = jwks_gateway
    assert client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa))).status_code == 200
    idp.up = False
    time.sleep(0.5)  # past the key set's freshness: every refresh now fails
    for i in range(5):  # fresh tokens (not in the validation cache), signed by known keys
        assert client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa, jti=f"down-{i}"))).status_code == 200
    assert client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.ec, "ES256", jti="ec"))).status_code == 200
    # A key the gateway never saw cannot be checked: 401, not a 500, and no fetch storm.
    hits, began = idp.hits["/jwks"], time.monotonic()
    for i in range(20):
        r = client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa_next, jti=f"new-{i}")))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # At most one fetch per jwks_min_fetch_interval (0.1 s), whatever the number of requests.
    assert idp.hits["/jwks"] - hits <= (time.monotonic() - began) / 0.1 + 2
    # The IdP is back, now publishing the rotated key: it is picked up.
    idp.publish(auth_keys.public_jwks(auth_keys.rsa, auth_keys.rsa_next, auth_keys.ec))
    idp.up = True
    assert wait_for(lambda: client.get("/v1/shelves/scifi",
                                        headers=bearer(mint(auth_keys.rsa_next, jti=str(time.monotonic())))).status_code == 200)


# ---- certificate files replaced with garbage ------------------------------------------------


def _served_fingerprint(port: int) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


@pytest.fixture
def tls_gateway(demo_backend, tmp_path):
    cert, key = ensure_dev_certificate(tmp_path / "tls")
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        listen={"plaintext": False, "tls": {"cert_file": str(cert), "key_file": str(key), "reload_interval": 0.1}},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw:
        yield gw, cert, key


@pytest.mark.parametrize("damage", ["garbage cert", "garbage key", "empty files", "key of another cert", "deleted"])
def test_certificate_files_replaced_with_garbage_keep_the_old_certificate(tls_gateway, damage):
    gw, cert, key = tls_gateway
    port = gw.server.public.port
    good = _served_fingerprint(port)
    assert good == gw.server.tls.current_fingerprint
    original = cert.read_bytes(), key.read_bytes()
    if damage == "garbage cert":
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    elif damage == "garbage key":
        key.write_bytes(b"\x00\xff" * 100)
    elif damage == "empty files":
        cert.write_bytes(b"")
        key.write_bytes(b"")
    elif damage == "key of another cert":
        key.write_bytes(generate_certificate("localhost", hosts=["localhost"]).key_pem())
    else:
        cert.unlink()
        key.unlink()
    assert wait_for(lambda: gw.server.tls.last_error is not None, timeout=5)  # the watcher saw and refused it
    async def sighup() -> None:
        gw.server.reload()

    gw.run(sighup())  # SIGHUP's reload refuses it too
    assert _served_fingerprint(port) == good
    context = ssl.create_default_context(cafile=None)
    context.load_verify_locations(cadata=original[0].decode())
    with httpx.Client(base_url=gw.url.replace("127.0.0.1", "localhost"), verify=context, timeout=10) as c:
        assert c.get("/v1/shelves/scifi").status_code == 200
    # Good files again: the new certificate serves new handshakes.
    fresh = generate_certificate("localhost", hosts=["localhost", "127.0.0.1"])
    write_atomically(key, fresh.key_pem(), mode=0o600)
    write_atomically(cert, fresh.cert_pem)
    assert wait_for(lambda: _served_fingerprint(port) == fresh.fingerprint, timeout=5)
