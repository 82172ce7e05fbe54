"""Hostile headers about who the caller is: spoofed identity and forwarding headers,
duplicated credentials, and the JWT attack list rerun through the batch endpoint.

Real gateway, real demo backend (its recorder shows what identity metadata arrived),
real local IdP serving a JWKS, real tokens and forged ones.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest

from tests.support.auth import b64json, b64url, bearer, claims_for, forge, hmac_forge, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway

LIB = "edgedemo.library.v1.LibraryService"
BATCH = "/v1/batch"


# ---- forwarding headers -------------------------------------------------------------------


def _per_ip_gateway(demo_backend, **rate_limits):
    return gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "per-ip", "limit": 3, "window": "1m", "key": "ip", "match": ["GET /v1/*"]}],
                     **rate_limits},
        access_log={"enabled": False},
    )


def test_spoofed_x_forwarded_for_does_not_buy_a_fresh_budget(demo_backend):
    """With no trusted proxies configured the peer address is the client, whatever
    X-Forwarded-For (or Forwarded, X-Real-IP) claims: a client rotating fake addresses
    shares one budget."""
    with running_gateway(_per_ip_gateway(demo_backend)) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        statuses = []
        for i in range(6):
            spoof = {"x-forwarded-for": f"198.51.100.{i}", "x-real-ip": f"203.0.113.{i}",
                     "forwarded": f"for=192.0.2.{i}", "x-forwarded-proto": "https"}
            statuses.append(c.get("/v1/shelves/scifi", headers=spoof).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert demo_backend.recorder.calls["GetShelf"] == 3


def test_x_forwarded_for_believed_only_from_a_trusted_proxy(demo_backend):
    """Loopback as the trusted proxy: the rightmost untrusted hop is the client, so
    entries a client prepends itself change nothing."""
    config = _per_ip_gateway(demo_backend, trusted_proxies=["127.0.0.1/32"])
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        def get(xff: str) -> int:
            return c.get("/v1/shelves/scifi", headers={"x-forwarded-for": xff}).status_code

        # Client 198.51.100.7 behind our proxy, prepending random addresses each time.
        assert [get(f"10.9.9.{i}, 198.51.100.7") for i in range(4)] == [200, 200, 200, 429]
        # Another client has its own budget.
        assert get("198.51.100.8") == 200
