"""JWT access-token validation with joserfc, one verifier per trusted issuer.

The issuer is picked by the token's (unverified) `iss`, and the signature is
then checked with only that issuer's keys and algorithm list, so a token can
never choose its own algorithm or key. joserfc's `jwt.decode` checks no claims:
the claims registry here always requires exp, iss and aud (plus the issuer's
required claims) and checks nbf/iat, all with the issuer's leeway.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, OctKey
from joserfc.jws import JWSRegistry

from .config import IssuerConfig
from .discovery import IssuerDiscovery
from .errors import invalid_token
from .jwks import JwksCache, key_fits
from .principal import Principal, make_principal
from .shape import parse_unverified, typ_matches


class IssuerVerifier:
    """Everything needed to check one issuer's tokens."""

    def __init__(
        self,
        config: IssuerConfig,
        client: httpx.AsyncClient | None,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        discovery: IssuerDiscovery | None = None,
    ) -> None:
        self.config = config
        # Unknown, non-critical header parameters are ignored (RFC 7515); the
        # dangerous ones never get here (see shape.REFUSED_HEADERS).
        self.registry = JWSRegistry(algorithms=list(config.algorithms), strict_check_header=False)
        self.registry.max_header_length = 2048
        self.secret: OctKey | None = None
        self.jwks: JwksCache | None = None
        if config.is_hmac:
            assert config.shared_secret is not None
            self.secret = OctKey.import_key(config.shared_secret.get_secret_value().encode("utf-8"))
        else:
            self.jwks = JwksCache(config, client, monotonic=monotonic, discovery=discovery)
        claims: dict[str, Any] = {name: {"essential": True} for name in config.required_claims}
        claims.update(
            exp={"essential": True},
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "values": list(config.audiences)},
        )
        self.claims = jwt.JWTClaimsRegistry(now=lambda: int(clock()), leeway=config.leeway, **claims)

    async def keys(self, kid: str | None, alg: str) -> list[Key]:
        if self.secret is not None:
            return [self.secret] if key_fits(self.secret, alg) else []
        assert self.jwks is not None
        return await self.jwks.keys_for(kid, alg)


def _claim_error(exc: ClaimError) -> Exception:
    claim = exc.claim
    if isinstance(exc, ExpiredTokenError):
        return invalid_token("expired", "token has expired")
    if isinstance(exc, MissingClaimError):
        return invalid_token("malformed", f"token lacks required claim(s): {claim}")
    if claim in ("nbf", "iat") and "must be" not in (exc.description or ""):
        return invalid_token("not_yet_valid", "token is not valid yet" if claim == "nbf" else "token was issued in the future")
    if claim == "aud":
        return invalid_token("wrong_audience", "token audience is not accepted")
    if claim == "iss":
        return invalid_token("wrong_issuer", "token issuer is not accepted")
    return invalid_token("malformed", f"token claim {claim!r} is invalid")


class JwtValidator:
    """Validates compact JWS access tokens against the configured issuers."""

    def __init__(
        self,
        issuers: list[IssuerConfig],
        client: httpx.AsyncClient | None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        discovery: Mapping[str, IssuerDiscovery] | None = None,
    ) -> None:
        found = discovery or {}
        self.issuers = {
            i.issuer: IssuerVerifier(i, client, clock, monotonic, found.get(i.issuer)) for i in issuers if i.algorithms
        }
        #: Signature verifications performed (the result cache exists to keep this low).
        self.signature_checks = 0

    async def start(self) -> None:
        await asyncio.gather(*(v.jwks.start() for v in self.issuers.values() if v.jwks is not None))

    async def close(self) -> None:
        for verifier in self.issuers.values():
            if verifier.jwks is not None:
                await verifier.jwks.close()

    async def validate(self, token: str) -> Principal:
        unverified = parse_unverified(token)
        iss = unverified.claims["iss"]
        verifier = self.issuers.get(iss)
        if verifier is None:
            raise invalid_token("wrong_issuer", "token issuer is not trusted")
        config = verifier.config
        if unverified.alg not in config.algorithms:
            raise invalid_token("bad_algorithm", f"algorithm {unverified.alg[:20]!r} is not accepted for this issuer")
        if config.expected_typ and not typ_matches(unverified.header.get("typ"), config.expected_typ):
            raise invalid_token("wrong_type", f"token typ must be {config.expected_typ!r}")
        keys = await verifier.keys(unverified.kid, unverified.alg)
        if not keys:
            raise invalid_token("unknown_key", "no key fits the token")
        decoded: jwt.Token | None = None
        for key in keys:
            self.signature_checks += 1
            try:
                decoded = jwt.decode(token, key, registry=verifier.registry)
                break
            except BadSignatureError:
                continue
            except (JoseError, ValueError, TypeError) as exc:
                code = getattr(exc, "error", "") or exc.__class__.__name__
                raise invalid_token("malformed", f"token rejected: {code}") from None
        if decoded is None:
            raise invalid_token("bad_signature", "token signature does not verify")
        try:
            verifier.claims.validate(decoded.claims)
        except ClaimError as exc:
            raise _claim_error(exc) from None
        exp = decoded.claims["exp"]
        return make_principal(decoded.claims, config.issuer, "jwt", float(exp))
