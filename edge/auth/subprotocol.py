"""A bearer token carried in `Sec-WebSocket-Protocol`: the one header a browser lets a page
set on a WebSocket (`new WebSocket(url, protocols)`), since it cannot set Authorization.

The convention (the same idea as Kubernetes' `base64url.bearer.authorization.k8s.io.<token>`):
the page offers two subprotocols,

    new WebSocket(url, ["edge.json", "bearer." + token])

`edge.json` names the message protocol (one JSON message per text frame) and is the only
value the gateway ever echoes back; `bearer.<token>` carries the credential and is never
echoed, logged or forwarded as a header. A browser fails the socket when the server picks
none of the offered values, so a bearer value without `edge.json` is refused (400), and so
is a bearer value beside an Authorization header (two credentials: RFC 6750 refuses that
too) or more than one bearer value. A JWT is base64url with dots, all of them token
characters, so it fits a subprotocol value as it is.

The token is then handed to the authenticator exactly as `Authorization: Bearer <token>`
would be: one validation path for every credential, and a route's `forward_token` passes
it on the same way.
"""
from __future__ import annotations

from collections.abc import Iterable

from .errors import AuthError

PROTOCOL = "edge.json"
BEARER_PREFIX = "bearer."


def subprotocol_credential(offered: Iterable[str], headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(the Authorization value the offer carries or None, the subprotocol to echo or None).

    `offered` is the ASGI scope's `subprotocols`; `headers` the request's (lower-cased names)."""
    bearers: list[str] = []
    named = False
    for value in offered:
        if value[: len(BEARER_PREFIX)].lower() == BEARER_PREFIX:
            bearers.append(value[len(BEARER_PREFIX):])
        elif value == PROTOCOL:
            named = True
    if not bearers:
        return None, PROTOCOL if named else None
    if len(bearers) > 1:
        raise AuthError(400, "invalid_request", "offer one bearer.<token> subprotocol, not several", "malformed")
    if "authorization" in headers:
        raise AuthError(400, "invalid_request",
                        "send the token in Authorization or in a bearer.<token> subprotocol, not both", "malformed")
    if not named:
        raise AuthError(400, "invalid_request",
                        f"a bearer.<token> subprotocol needs {PROTOCOL!r} offered beside it (the one echoed back)",
                        "malformed")
    if not bearers[0]:
        raise AuthError(401, "invalid_request", "credential is malformed", "malformed")
    return f"Bearer {bearers[0]}", PROTOCOL
