"""Calls of one Lua script made in one event-loop turn, sent to Redis as one pipeline.

A request's rate-limit charge (or, with an Idempotency-Key, its admission) is its
round trip before the backend call; storing its idempotency record (`complete`)
the one after. Under load many requests reach the same point in the same loop
turn (they arrived in one read of the listener's sockets), and redis-py spends
several times more CPU on a command sent alone than on one among others in a
pipeline (scripts/bench_state.py measures both). So their EVALSHAs go together:
one write, one read, one wake-up, one timeout and one breaker verdict for the lot.
Nothing waits for company: a call made alone goes at the next turn.

A caller cancelled before its turn's pipeline went (its client hung up) is left
out when `drop_abandoned` is set: a charge or a reservation nobody will use is not
made. Completions keep theirs: a record the backend's answer produced is stored.

Each caller still awaits its own script's answer, so a reply is sent only once its
record is stored and exactly-once is what it was (docs/state.md, "The completion
trip"). A pipeline that fails fails every call in it with `StoreUnavailable`, as
each would have failed alone. Not for Redis Cluster: a pipeline there splits by
slot anyway (records spread over every shard), so the store calls one by one.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from redis.exceptions import NoScriptError

from .errors import StoreUnavailable

Waiting = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """`await batcher(keys, args)`: the script's answer, sent with the other calls of this turn."""

    def __init__(self, client: Any, script: Any, call: Callable[..., Awaitable[Any]], op: str, *,
                 drop_abandoned: bool = False) -> None:
        self.client = client
        self.drop_abandoned = drop_abandoned
        self.script = script
        self._call = call  # the store's `_call`: its timeout, breaker and stats for the whole pipeline
        self.op = op
        self._waiting: list[Waiting] = []
        self._sending: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
        self.batches = 0
        self.calls = 0

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((keys, args, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if self.drop_abandoned:
            batch = [waiting for waiting in batch if not waiting[2].done()]
            if not batch:
                return
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Waiting]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            results = await self._call(self.op, self._pipeline, batch)
        except BaseException as e:
            failure = e if isinstance(e, StoreUnavailable) else StoreUnavailable(f"redis {self.op} failed: {e!r}")
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(e, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results):
            if future.done():
                continue  # its caller was cancelled; the record is stored all the same
            if isinstance(result, Exception):
                future.set_exception(StoreUnavailable(f"redis {self.op} failed: {result!r}"))
            else:
                future.set_result(result)

    async def _pipeline(self, batch: list[Waiting]) -> list[Any]:
        if len(batch) == 1:  # alone: the script object sends it (and reloads it on NOSCRIPT)
            keys, args, _ = batch[0]
            return [await self.script(keys=keys, args=args)]
        results = await self._execute(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # an emptied Redis (restarted): load the script, send again what it refused
            await self.client.script_load(self.script.script)
            for i, result in zip(missing, await self._execute([batch[i] for i in missing])):
                results[i] = result
        return results

    async def _execute(self, batch: list[Waiting]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(self.script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)
