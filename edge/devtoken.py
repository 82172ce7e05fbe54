"""A development token issuer for the demo and for trying the gateway locally.

It keeps an RSA key in a directory, publishes its public half as a JWKS file
the gateway reads (`jwks_file`), and mints short-lived access tokens. It is
for laptops only: a real deployment trusts its identity provider's JWKS URL.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import RSAKey

DEV_ISSUER = "https://dev-issuer.edge.localhost"
DEV_AUDIENCE = "edge-demo"
KEY_ID = "dev-1"


def ensure_dev_issuer(directory: Path) -> tuple[Path, Path]:
    """(private key file, JWKS file) in `directory`, created on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    private, jwks = directory / "dev-issuer-key.json", directory / "dev-issuer-jwks.json"
    if not private.exists():
        key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"}, private=True)
        private.touch(mode=0o600)
        private.write_text(json.dumps(key.as_dict(private=True)))
        jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return private, jwks


def mint_dev_token(private: Path, subject: str = "ada", scopes: str = "library.read library.write",
                   lifetime: int = 3600, **claims: object) -> str:
    key = RSAKey.import_key(json.loads(private.read_text()))
    now = int(time.time())
    payload = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": subject, "scope": scopes,
               "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode({"alg": "RS256", "kid": KEY_ID, "typ": "at+jwt"}, payload, key)
