"""Identifiers that must be unique but not secret (request ids, lock tokens).

A random per-process prefix and a counter: no syscall per id. `os.urandom` on
the event loop costs ~16 µs under load, not its ~0.3 µs alone, because it drops
the GIL and gRPC's poller thread and the log writer take it in the meantime.
A forked child draws a new prefix, so parent and child never share a sequence.
"""
from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count(1)


_reseed()
os.register_at_fork(after_in_child=_reseed)


def unique_hex() -> str:
    """32 hex digits, unique across processes and across restarts (64 random bits per process)."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFFFFFF:016x}"
