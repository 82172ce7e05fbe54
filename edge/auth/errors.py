"""The one exception the auth engine raises, shaped for RFC 6750 answers."""
from __future__ import annotations

from typing import Literal

#: Short machine reasons for logs and metrics. RFC 6750's `error` codes are too
#: coarse to tell an expired token from a forged one; these are not.
Reason = Literal[
    "missing",  # no credential where one is required
    "malformed",  # not a well-formed token/header (incl. refused JOSE header parameters)
    "too_large",  # credential over the configured size
    "bad_algorithm",  # alg not in the issuer's list (incl. "none")
    "bad_signature",
    "unknown_key",  # no key in the issuer's key set for the token's kid
    "unavailable",  # key set or introspection endpoint could not be reached
    "expired",
    "not_yet_valid",  # nbf or iat in the future (beyond leeway)
    "wrong_issuer",  # untrusted issuer, or one the route does not accept
    "wrong_audience",
    "wrong_type",  # typ header differs from the issuer's expected_typ
    "inactive",  # introspection says active=false
    "bad_api_key",
    "insufficient_scope",
]

ErrorCode = Literal["invalid_token", "insufficient_scope", "invalid_request"]

_MAX_DESCRIPTION = 200


def _quotable(text: str) -> str:
    """RFC 6750 error_description allows %x20-21 / %x23-5B / %x5D-7E only."""
    cleaned = "".join(c if (" " <= c <= "~" and c not in '"\\') else "?" for c in text)
    return cleaned[:_MAX_DESCRIPTION]


class AuthError(Exception):
    """A request the gateway refuses on auth grounds.

    `status` is the HTTP status to answer with: 401 (no or bad credential),
    403 (valid credential, missing scope), 400 (ambiguous credentials: RFC 6750
    `invalid_request`) or 431 (credential over `max_token_bytes`). `error` is
    the RFC 6750 code, or None when the request carried no credential at all
    (RFC 6750 section 3.1: then no error code is sent). `description` is safe
    to show the client; it never contains the token.
    """

    def __init__(
        self,
        status: int,
        error: ErrorCode | None,
        description: str,
        reason: Reason,
        scope: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.reason = reason
        self.scope = scope

    def www_authenticate(self, realm: str) -> str:
        """The `WWW-Authenticate` header value for this refusal."""
        parts = [f'Bearer realm="{_quotable(realm)}"']
        if self.error is not None:
            parts.append(f'error="{self.error}"')
            parts.append(f'error_description="{_quotable(self.description)}"')
        if self.scope:
            parts.append(f'scope="{_quotable(self.scope)}"')
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"AuthError(status={self.status}, error={self.error!r}, reason={self.reason!r}, description={self.description!r})"


def invalid_token(reason: Reason, description: str) -> AuthError:
    return AuthError(401, "invalid_token", description, reason)
