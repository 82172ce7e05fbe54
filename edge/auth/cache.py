"""A small LRU cache whose entries also expire, for verified credentials."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


def token_digest(token: str) -> str:
    """Cache key and log fingerprint for a credential: the credential itself is never stored or logged."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ExpiringLru(Generic[V]):
    """Bounded in size (least recently used goes first) and in time (per-entry deadline)."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        deadline, value = hit
        if self._clock() >= deadline:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V, deadline: float) -> None:
        if self._max <= 0 or deadline <= self._clock():
            return
        self._entries[key] = (deadline, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
