"""Stored API keys through real gateways: the admin API, `edge keys`, tiers in rate limits,
and a revocation reaching a second gateway process on the same Redis."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge.auth import hash_api_key
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
CONFIG_KEY = "ek_config_" + "k" * 36
SHELF = "/v1/shelves/scifi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keys_auth(cache_ttl: str = "5s") -> dict:
    return {
        "api_key_store": {"cache_ttl": cache_ttl},
        "api_keys": [{"sha256": hash_api_key(CONFIG_KEY), "principal": "from-config"}],
        "identity_metadata": {"x-user-id": "sub", "x-key-tier": "tier"},
    }


@pytest.fixture
def keyed_gateway(demo_backend):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        auth=keys_auth(),
        rate_limits={"policies": [{"name": "per-tier", "vary_by_claim": {
            "claim": "tier", "tiers": {"gold": "2/1m"}, "default": "100/1m"}}]},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as public, \
            httpx.Client(base_url=gw.admin_url, timeout=10) as admin:
        yield public, admin


def test_admin_api_adds_lists_and_revokes_without_a_restart(keyed_gateway, demo_backend):
    public, admin = keyed_gateway
    assert public.get(SHELF, headers={"x-api-key": "ek_" + "n" * 43}).status_code == 401
    added = admin.post("/admin/keys", json={"principal": "reports-svc", "scopes": ["library.read"], "tier": "silver"})
    assert added.status_code == 201, added.text
    body = added.json()
    key, kid = body["key"], body["id"]
    assert body["shared"] is False  # memory store: this process only
    assert body["principal"] == "reports-svc" and body["scopes"] == ["library.read"] and body["tier"] == "silver"

    r = public.get(SHELF, headers={"x-api-key": key, "x-user-id": "mallory", "x-key-tier": "gold"})
    assert r.status_code == 200, r.text
    record = demo_backend.recorder.last("GetShelf")
    assert record.headers("x-user-id") == ["reports-svc"] and record.headers("x-key-tier") == ["silver"]

    listed = admin.get("/admin/keys").json()
    assert listed["revocation_bound_seconds"] == 5
    assert {(k["id"], k["source"]) for k in listed["keys"]} == {(kid, "store"), (hash_api_key(CONFIG_KEY)[:16], "config")}
    assert key not in str(listed) and hash_api_key(key) not in str(listed)

    revoked = admin.delete(f"/admin/keys/{kid}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] == kid
    assert public.get(SHELF, headers={"x-api-key": key}).status_code == 401  # here: at once
    assert admin.delete(f"/admin/keys/{kid}").status_code == 404
    assert admin.delete(f"/admin/keys/{hash_api_key(CONFIG_KEY)[:16]}").status_code == 409
    assert admin.delete("/admin/keys/NOT-AN-ID").status_code == 400
    assert public.get(SHELF, headers={"x-api-key": CONFIG_KEY}).status_code == 200


@pytest.mark.parametrize("body", [
    {}, {"principal": ""}, {"principal": "svc", "scopes": ["a b"]}, {"principal": "svc", "tier": "x y"},
    {"principal": "svc", "expires_in": "-1s"}, {"principal": "svc", "key": "ek_mine"},
])
def test_admin_api_refuses_bad_keys(keyed_gateway, body):
    _, admin = keyed_gateway
    r = admin.post("/admin/keys", json=body)
    assert r.status_code == 422, r.text
    assert admin.get("/admin/keys").json()["keys"] == [
        {"id": hash_api_key(CONFIG_KEY)[:16], "principal": "from-config", "scopes": [], "tier": None, "source": "config"}
    ]


def test_key_tier_drives_rate_limit_tiers(keyed_gateway):
    public, admin = keyed_gateway
    gold = admin.post("/admin/keys", json={"principal": "gold-svc", "tier": "gold"}).json()["key"]
    plain = admin.post("/admin/keys", json={"principal": "plain-svc"}).json()["key"]
    assert [public.get(SHELF, headers={"x-api-key": gold}).status_code for _ in range(3)] == [200, 200, 429]
    assert [public.get(SHELF, headers={"x-api-key": plain}).status_code for _ in range(3)] == [200, 200, 200]


def test_admin_keys_answer_404_when_the_store_is_off(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], auth={"api_keys": []})
    with running_gateway(config) as gw:
        r = httpx.get(gw.admin_url + "/admin/keys", timeout=10)
        assert r.status_code == 404 and "auth.api_key_store" in r.json()["detail"]


def edge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_cli_reaches_a_memory_store_gateway_through_its_admin_listener(tmp_path, demo_backend):
    admin_port = free_port()
    raw = {"listen": {"plaintext": True, "port": 0}, "admin": {"port": admin_port}, "access_log": {"enabled": False}}
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], auth=keys_auth(), **raw)
    path = tmp_path / "edge.yaml"
    path.write_text(f"listen: {{plaintext: true}}\nadmin: {{port: {admin_port}}}\n"
                    f"backends: [{{name: demo, target: '{demo_backend.target}'}}]\n"
                    "auth: {api_key_store: {cache_ttl: 5s}}\n")
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as public:
        added = edge("keys", "add", "--config", str(path), "--principal", "cli-svc", "--scope", "library.read")
        assert added.returncode == 0, added.stderr
        key = added.stdout.strip()
        assert key.startswith("ek_") and "only time the key is shown" in added.stderr
        assert public.get(SHELF, headers={"x-api-key": key}).status_code == 200
        listed = edge("keys", "list", "--config", str(path))
        kid = hash_api_key(key)[:16]
        assert kid in listed.stdout and "cli-svc" in listed.stdout and key not in listed.stdout
        assert edge("keys", "revoke", "--config", str(path), kid).returncode == 0
        assert public.get(SHELF, headers={"x-api-key": key}).status_code == 401
        again = edge("keys", "revoke", "--config", str(path), kid)
        assert again.returncode == 1 and "no stored key" in again.stderr


def test_cli_refuses_without_a_key_store(tmp_path):
    path = tmp_path / "edge.yaml"
    path.write_text("listen: {plaintext: true}\nbackends: [{name: demo, target: '127.0.0.1:1'}]\n")
    result = edge("keys", "list", "--config", str(path))
    assert result.returncode == 2 and "auth.api_key_store" in result.stderr


# ---- two gateway processes, one Redis ---------------------------------------------------


def _spawn(tmp_path: Path, name: str, target: str, redis_url: str, prefix: str, ttl: str) -> tuple[subprocess.Popen, str, str, Path]:
    port, admin_port = free_port(), free_port()
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: {port}, plaintext: true}}
admin: {{host: 127.0.0.1, port: {admin_port}}}
lifecycle: {{pre_drain_delay: 0s}}
access_log: {{enabled: false}}
backends: [{{name: demo, target: '{target}'}}]
store: {{backend: redis, redis: {{url: '{redis_url}', key_prefix: '{prefix}', timeout: 2s}}}}
auth: {{api_key_store: {{cache_ttl: {ttl}}}}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_for(ready, timeout=30):
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    return proc, url, f"http://127.0.0.1:{admin_port}", config


def test_two_gateways_share_keys_and_a_revocation_within_the_bound(tmp_path, demo_backend, redis_target, redis_prefix):
    ttl = 2.0
    gateways = [_spawn(tmp_path, f"gw{i}", demo_backend.target, redis_target.url, redis_prefix, f"{ttl}s") for i in range(2)]
    try:
        (_, url0, admin0, config0), (_, url1, _, _) = gateways
        added = edge("keys", "add", "--config", str(config0), "--principal", "fleet-svc", "--tier", "gold")
        assert added.returncode == 0, added.stderr
        key = added.stdout.strip()
        kid = hash_api_key(key)[:16]
        for url in (url0, url1):  # no restart: both gateways accept it
            assert httpx.get(url + SHELF, headers={"x-api-key": key}, timeout=10).status_code == 200
        assert demo_backend.recorder.last("GetShelf").header("x-user-id") == "fleet-svc"

        revoked = httpx.delete(f"{admin0}/admin/keys/{kid}", timeout=10)
        revoked_at = time.monotonic()
        assert revoked.status_code == 200, revoked.text
        assert httpx.get(url0 + SHELF, headers={"x-api-key": key}, timeout=10).status_code == 401
        # The other gateway may still serve it from its cache, at most cache_ttl; then it refuses.
        assert wait_for(lambda: httpx.get(url1 + SHELF, headers={"x-api-key": key}, timeout=10).status_code == 401,
                        timeout=ttl + 30)
        print(f"revocation seen by the second gateway after {time.monotonic() - revoked_at:.2f}s (bound {ttl}s)")
        listed = edge("keys", "list", "--config", str(config0), "--json")
        assert listed.returncode == 0 and kid not in listed.stdout
    finally:
        for proc, *_ in gateways:
            proc.terminate()
        for proc, *_ in gateways:
            proc.wait(20)
