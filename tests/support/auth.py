"""Auth test fixtures: a real local identity provider and real signing keys.

`IdpServer` is a plain `http.server` in a thread serving a JWKS (`/jwks`),
RFC 7662 introspection (`/introspect`, client credentials by basic auth) and
any JSON document a test publishes at a path (discovery documents). It counts
hits per path and notes when each arrived, can switch its published key set,
can answer slowly (`delay`, the answer being what was published when the
request arrived) and can be switched off (it then answers 503, like an IdP in
trouble). Tokens are minted with real
RSA, EC and HMAC keys through joserfc, or forged byte by byte where a test
needs a token no honest library would produce.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

ISSUER = "https://idp.edge.test"
AUDIENCE = "edge-api"
CLIENT_ID = "edge-gateway"
CLIENT_SECRET = "introspection-secret"

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def b64url(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")))


@dataclass(frozen=True)
class AuthKeys:
    rsa: RSAKey  # kid rsa-1, published from the start
    rsa_next: RSAKey  # kid rsa-2, published after a "rotation"
    ec: ECKey  # kid ec-1 (P-256)
    hmac_secret: bytes

    def public_jwks(self, *keys: Key) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) | {"use": "sig"} for k in keys]}


class IdpServer:
    """A local IdP: JWKS and token introspection over real HTTP."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}  # time.monotonic() of each request, per path
        self.up = True
        self.delay = 0.0
        self.documents: dict[str, tuple[Any, str | None]] = {}
        self.jwks: dict[str, Any] = {"keys": []}
        self.cache_control: str | None = None
        self.introspection: dict[str, dict[str, Any]] = {}
        self.bad_client_auth = 0
        self._lock = threading.Lock()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with idp._lock:
                    idp.hits[self.path] += 1
                    idp.arrivals.setdefault(self.path, []).append(time.monotonic())
                    up, jwks, cc, delay = idp.up, idp.jwks, idp.cache_control, idp.delay
                    document = idp.documents.get(self.path)
                if delay:
                    time.sleep(delay)
                if not up:
                    return self._send(503, {"error": "down"})
                if self.path == "/jwks":
                    return self._send(200, jwks, {"cache-control": cc} if cc else None)
                if document is not None:
                    body, doc_cc = document
                    return self._send(200, body, {"cache-control": doc_cc} if doc_cc else None)
                self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                with idp._lock:
                    idp.hits[self.path] += 1
                    up = idp.up
                if not up:
                    return self._send(503, {"error": "down"})
                if self.path != "/introspect":
                    return self._send(404, {"error": "not found"})
                expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if not hmac.compare_digest(self.headers.get("authorization", ""), expected):
                    with idp._lock:
                        idp.bad_client_auth += 1
                    return self._send(401, {"error": "invalid_client"})
                token = (form.get("token") or [""])[0]
                self._send(200, idp.introspection.get(token, {"active": False}))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="idp", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def publish(self, jwks: dict[str, Any]) -> None:
        with self._lock:
            self.jwks = jwks

    def serve(self, path: str, body: Any, cache_control: str | None = None) -> None:
        """Answer GET `path` with `body` as JSON (None: stop serving it, 404)."""
        with self._lock:
            if body is None:
                self.documents.pop(path, None)
            else:
                self.documents[path] = (body, cache_control)

    def start(self) -> IdpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def auth_keys() -> AuthKeys:
    return AuthKeys(
        rsa=RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}),
        rsa_next=RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}),
        ec=ECKey.generate_key("P-256", parameters={"kid": "ec-1"}),
        hmac_secret=hashlib.sha256(b"edge tests shared secret").hexdigest().encode(),
    )


@pytest.fixture
def idp(auth_keys: AuthKeys) -> Iterator[IdpServer]:
    """The IdP, publishing rsa-1 and ec-1."""
    server = IdpServer().start()
    server.publish(auth_keys.public_jwks(auth_keys.rsa, auth_keys.ec))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def other_server() -> Iterator[IdpServer]:
    """A second server a malicious token may point at (its hits must stay zero)."""
    server = IdpServer().start()
    try:
        yield server
    finally:
        server.stop()


def issuer_config(idp: IdpServer | None = None, **overrides: Any) -> dict[str, Any]:
    """An asymmetric issuer reading keys from `idp`, with quiet background refresh."""
    cfg: dict[str, Any] = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "algorithms": ["RS256", "ES256"],
        "leeway": 5,
        "jwks_min_fetch_interval": 0,
        "jwks_refresh_interval": 300,
    }
    if idp is not None:
        cfg["jwks_url"] = idp.jwks_url
    cfg.update(overrides)
    return cfg


def claims_for(now: float | None = None, **overrides: Any) -> dict[str, Any]:
    t = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": t,
        "exp": t + 300,
        "scope": "library.read",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(key: Key, alg: str = "RS256", header: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token signed by joserfc; `claims` override the defaults of claims_for()."""
    hdr: dict[str, Any] = {"alg": alg}
    if key.kid and not isinstance(key, OctKey):
        hdr["kid"] = key.kid
    hdr.update(header or {})
    hdr = {k: v for k, v in hdr.items() if v is not None}
    # Let joserfc sign headers it would itself refuse (crit extensions, vendor headers).
    extra = {k: HeaderParameter(k, lambda _v: None) for k in hdr if k not in JWSRegistry.default_header_registry}
    registry = JWSRegistry(header_registry=extra, algorithms=[alg], strict_check_header=False)
    return jwt.encode(hdr, claims_for(**claims), key, registry=registry)


def forge(header: dict[str, Any], claims: dict[str, Any], signature: str) -> str:
    """A token assembled by hand (for alg none, crafted signatures, ...)."""
    return f"{b64json(header)}.{b64json(claims)}.{signature}"


def hmac_forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """HS256 over `header.claims` with an arbitrary secret (e.g. an RSA public key PEM)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
