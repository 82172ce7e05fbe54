"""The one small async interface both state-backed features use, and its values.

Two implementations: `MemoryStore` (one process) and `RedisStore` (a fleet).
Every operation is atomic on the store's side, so engines never need locks,
and `rate_limit` evaluates every limit of a request at once, all-or-nothing.
`admit` does a request's rate limits and its Idempotency-Key reservation in
one call (one Redis round trip), the reservation only if the limits admit it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol, Sequence, runtime_checkable

from .errors import StoreUnavailable

Algorithm = Literal["gcra", "sliding_window"]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit to evaluate. `key` is the logical key; the store namespaces it.

    `cost` units are required; with `max_cost` set (hybrid leases) the store
    grants as many as are available up to `max_cost`, but never fewer than `cost`.
    """
    key: str
    algorithm: Algorithm
    limit: int
    window: float  # seconds
    cost: int = 1
    max_cost: int | None = None


@dataclass(frozen=True, slots=True)
class LimitResult:
    allowed: bool        # the whole request was admitted (same for every check of a call)
    granted: int         # units charged to this limit (0 when refused)
    remaining: int       # units left after this call
    reset_after: float   # seconds until this limit's quota is whole again (GCRA) / window ends (sliding)
    retry_after: float   # seconds until this check could admit `cost` (0 if it is not what refused)


class ReservationState(str, Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Reservation:
    state: ReservationState
    record: bytes | None = None      # the stored response, when COMPLETED
    token: str | None = None         # proves ownership of a NEW reservation to complete/release
    retry_after: float | None = None # seconds the in-flight lock still holds, when IN_FLIGHT
    resumed: bool = False            # NEW over an earlier attempt of unknown outcome (the key stays bound)


@dataclass(slots=True)
class ReserveRequest:
    """An Idempotency-Key reservation to take in the same store call as the request's rate
    limits (`admit`). `answer` is what came back when it went with the charge: the
    reservation, or the StoreUnavailable that kept the store from answering; None when it
    did not go (no store call was needed for the limits, or a limit refused the request)."""
    key: str
    fingerprint: str
    lock_ttl: float
    keep_resumed: float  # a resumed key given back stays bound to its fingerprint this long (seconds)
    answer: Reservation | StoreUnavailable | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """`admit`'s answer. `reservation` is None when a limit refused the request: nothing was
    reserved (or what was, was released). Either part is the StoreUnavailable that kept the
    store from answering it (both the same one where they share one call)."""
    limits: list[LimitResult] | StoreUnavailable
    reservation: Reservation | StoreUnavailable | None


@dataclass(slots=True)
class StoreStats:
    """Counters for metrics: calls to the store and their failures."""
    round_trips: int = 0
    errors: int = 0
    fast_failures: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class StateStore(Protocol):
    name: str
    shared: bool  # True when state is shared by every gateway process (Redis)
    stats: StoreStats

    async def rate_limit(self, checks: Sequence[LimitCheck], now: float | None = None) -> list[LimitResult]:
        """Evaluate every check atomically; charge all of them or none. `now` (epoch
        seconds) overrides the store's clock (tests, replays); default: store time."""
        ...

    async def reserve(self, key: str, fingerprint: str, lock_ttl: float) -> Reservation:
        """Take `key` for one execution, or say why not (in flight, done, other request)."""
        ...

    async def admit(self, checks: Sequence[LimitCheck], reserve: ReserveRequest,
                    now: float | None = None) -> Admission:
        """`rate_limit(checks)` and, only when it admits, `reserve(...)`, as one operation
        where the store allows it: a refused request leaves no reservation behind, and a
        replay or a conflict is charged exactly as if the two were called one after the
        other. Never raises StoreUnavailable: the Admission carries it."""
        ...

    async def complete(self, key: str, fingerprint: str, record: bytes, retention: float,
                       token: str | None = None) -> bool:
        """Store the final response for `retention` seconds. False when the key now
        belongs to a different request (it was reused with another fingerprint)."""
        ...

    async def release(self, key: str, fingerprint: str, token: str | None = None,
                      keep_fingerprint: float | None = None) -> bool:
        """Drop our in-flight marker. With `keep_fingerprint` (seconds) the key stays
        bound to this fingerprint (an outcome the gateway cannot know), else it is deleted."""
        ...

    async def close(self) -> None: ...


async def give_back(store: StateStore, request: ReserveRequest, reservation: Reservation | StoreUnavailable | None) -> bool:
    """Release a NEW reservation nothing ran under (its request was refused after the key was
    taken with the charge). A key it resumed stays bound to its fingerprint: the earlier
    attempt's outcome is still unknown. False when there was nothing to give back, or the
    store could not take it (then the lock expires on its own, like any lock)."""
    if not isinstance(reservation, Reservation) or reservation.state is not ReservationState.NEW:
        return False
    try:
        return await store.release(request.key, request.fingerprint, reservation.token,
                                   request.keep_resumed if reservation.resumed else None)
    except StoreUnavailable:
        return False
