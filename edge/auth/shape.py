"""Structural checks on a compact JWT before any library or key sees it.

Cheap, strict refusals first: a token that is not exactly three canonical
base64url segments of JSON objects, or whose header asks the gateway to trust
keys named by the token itself, never reaches signature code. The header and
claims returned here are UNVERIFIED: they only pick the issuer and key.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import invalid_token

#: Header parameters the gateway never honours. Keys come only from the issuer's
#: configured JWKS (or secret), so a token naming its own key (jku, x5u, jwk,
#: x5c) is refused outright rather than half-trusted; `crit` names extensions
#: the gateway must understand and it understands none; `b64` (RFC 7797) would
#: change what the signature covers.
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class UnverifiedJwt:
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def alg(self) -> str:
        return self.header["alg"]

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")


def is_jwt_shaped(token: str) -> bool:
    """Three dot-separated parts: a JWS compact serialization; anything else is an opaque token."""
    return token.count(".") == 2


def _decode_segment(segment: str, what: str) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise invalid_token("malformed", f"token {what} is not unpadded base64url")
    if len(segment) % 4 == 1:
        raise invalid_token("malformed", f"token {what} has an impossible base64url length")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # Non-zero trailing bits decode to the same bytes as the canonical form:
    # refuse them so no two spellings of one token exist.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise invalid_token("malformed", f"token {what} is not canonical base64url")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_token("malformed", f"token {what} is not a JSON object ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise invalid_token("malformed", f"token {what} is not a JSON object")
    return value


def parse_unverified(token: str) -> UnverifiedJwt:
    """Split and decode a compact JWS; raise AuthError for anything not well-formed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise invalid_token("malformed", "token is not a JWT: expected three dot-separated parts")
    header_seg, payload_seg, signature_seg = parts
    if not signature_seg:
        raise invalid_token("bad_algorithm", "unsigned tokens are not accepted")
    header = _json_object(_decode_segment(header_seg, "header"), "header")
    _decode_segment(signature_seg, "signature")
    claims = _json_object(_decode_segment(payload_seg, "payload"), "payload")

    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise invalid_token("malformed", "token header has no alg")
    if alg.lower() == "none":
        raise invalid_token("bad_algorithm", "algorithm 'none' is not accepted")
    for name in REFUSED_HEADERS:
        if name in header:
            raise invalid_token("malformed", f"token header parameter {name!r} is not accepted")
    if "kid" in header and not isinstance(header["kid"], str):
        raise invalid_token("malformed", "token header kid is not a string")
    if "typ" in header and not isinstance(header["typ"], str):
        raise invalid_token("malformed", "token header typ is not a string")
    if not isinstance(claims.get("iss"), str):
        raise invalid_token("malformed", "token has no iss claim")
    return UnverifiedJwt(header, claims)


def typ_matches(actual: str | None, expected: str) -> bool:
    """RFC 7515 section 4.1.9: `typ` compares case-insensitively, with "application/" optional."""
    if actual is None:
        return False

    def norm(v: str) -> str:
        v = v.lower()
        return v.removeprefix("application/")

    return norm(actual) == norm(expected)

