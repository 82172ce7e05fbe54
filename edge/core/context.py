"""The two values that cross the core's boundary: the resolved call going in
(`CallContext`) and what came of it, in gRPC terms (`Outcome`).

Neither knows about HTTP bodies, ASGI or content types. An adapter (edge/protocols/)
resolves its protocol's request into a `CallContext` and renders the `Outcome` in its
protocol; the stages (edge/core/stages.py) read and fill the context on the way.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import grpc
from google.protobuf.message import Message

from transcoding.invoker import Metadata, ResponseStream
from transcoding.routes import Route

from ..idempotency import Reserving, StoredResponse
from ..ratelimit import RateLimitDecision
from .record import CallRecord

if TYPE_CHECKING:
    from ..auth import AuthOutcome, EffectivePolicy, Principal

# One request message (unary, server streaming), all of them (client or bidi streaming with
# the whole body read), or messages arriving over time (a client that streams them).
Requests = Union[Message, Sequence[Message], AsyncIterator[Message]]
OutgoingMetadata = list[tuple[str, Union[str, bytes]]]


@dataclass(slots=True)
class Fingerprint:
    """What makes two calls under one Idempotency-Key "the same request" (the engine hashes it)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes


@dataclass(slots=True)
class CallContext:
    """One resolved call on its way through the stages.

    `headers` is the call's incoming metadata (lower-case names: HTTP headers, a
    WebSocket's handshake headers, gRPC metadata); credentials, trace context and
    the Idempotency-Key are read from it. `http_method` is the verb the call came
    as (match patterns and limit keys use it; an adapter without verbs passes the
    route's). `decode` is the adapter's: it runs once the caller is admitted
    (identity and limits passed) and sets `request`, `metadata`, `deadline` and,
    for keyed calls, `fingerprint` - so a body is never decoded for a caller the
    gateway refuses. `stored_form` is the adapter's too: what an idempotent replay
    of this call's outcome answers (its protocol's rendering, stored as it is).
    `fingerprint_ahead`, the adapter's as well, sets `fingerprint` and `deadline`
    before the charge, without decoding the body, so a keyed call's reservation
    goes in the rate-limit stage's store call (one round trip for both); it says
    False when it cannot (a bad query or deadline: `decode` refuses the call in
    its place). `reserving` is that reservation, for the idempotency stage.
    The idempotency stage acts only on a call with a `fingerprint` (an adapter that
    offers Idempotency-Key protection sets it, and `stored_form`); other calls pass it by.
    """

    route: Route
    record: CallRecord
    headers: Mapping[str, str]
    request_id: str
    http_method: str
    client_ip: str | None = None
    principal: Principal | None = None
    preauthenticated: bool = False  # a batch item or a composed part: its batch authenticated once
    charged: bool = False  # rate limits already charged (a batch charges all its items at once)
    auth: AuthOutcome | None = None
    policy: EffectivePolicy | None = None
    ratelimit: RateLimitDecision | None = None
    request: Requests | None = None
    metadata: OutgoingMetadata = field(default_factory=list)
    deadline: float = 0.0  # seconds the backend call may take
    fingerprint: Fingerprint | None = None
    decode: Callable[[CallContext], None] | None = None
    stored_form: Callable[[Outcome], StoredResponse] | None = None
    fingerprint_ahead: Callable[[CallContext], bool] | None = None
    reserving: Reserving | None = None


@dataclass(slots=True)
class Outcome:
    """What came of a call, in gRPC terms.

    A unary call has `reply` (OK) or `code`, `details` and `error_details` (the
    decoded google.rpc.Status details); a server stream has `stream`, started but
    not read (the adapter reads it, so its first message, its errors and a client
    that leaves are the adapter's to handle, and it must cancel it when done). A
    replay of an idempotent call has `stored` (and the headers that mark it) and no
    reply: the adapter answers exactly what it stored. `ratelimit` is the decision
    the call was admitted under (None: no limits applied); rendering it (REST
    headers, gRPC trailers) is the adapter's job.
    """

    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    error_details: Sequence[dict[str, object]] = ()
    reply: Message | None = None
    stream: ResponseStream | None = None
    header_metadata: Metadata = ()
    trailer_metadata: Metadata = ()
    ratelimit: RateLimitDecision | None = None
    backend_seconds: float = 0.0
    stored: StoredResponse | None = None
    replay_headers: Sequence[tuple[str, str]] = ()
    rendered: object = None  # the adapter's own rendering, kept when stored_form made it (rendered once)


Next = Callable[[CallContext], Awaitable[Outcome]]
Stage = Callable[[CallContext, Next], Awaitable[Outcome]]
