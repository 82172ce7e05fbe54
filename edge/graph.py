"""Calls that depend on each other: the graph checks and the scheduler that batch
items and composed parts share.

`check_graph` refuses duplicate ids, unknown dependencies and cycles, naming
them. `run_graph` starts every node at once; each waits for the nodes it
depends on to finish (whatever they answered: what a failed dependency means
is the caller's to decide) and then runs. Parallelism, beyond what the
dependencies allow, is the caller's to bound (semaphores inside `run`). The
whole graph has one deadline, and may be stopped early (the client went away,
or a failure made the rest pointless): nodes still running are then cancelled,
which cancels the gRPC calls they await, so backends see CANCELLED.
"""
from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["GraphError", "GraphRun", "check_graph", "run_graph"]


class GraphError(ValueError):
    """Duplicate ids, unknown dependencies or a cycle; the message names them."""


def check_graph(ids: Sequence[str], depends_on: Mapping[str, Sequence[str]], what: str = "item") -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise GraphError(f"duplicate {what} id(s): {', '.join(duplicates)}")
    seen = set(ids)
    unknown = [(owner, dep) for owner in ids for dep in depends_on.get(owner, ()) if dep not in seen]
    if unknown:
        named = "; ".join(f"{what} {owner!r} depends on unknown id {dep!r}" for owner, dep in unknown)
        raise GraphError(f"unknown dependency: {named}")
    sorter = graphlib.TopologicalSorter({i: tuple(depends_on.get(i, ())) for i in ids})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        raise GraphError(
            f"dependency cycle between {what}s {' -> '.join(cycle)}; dependencies and references must not form a cycle"
        ) from None


@dataclass
class GraphRun:
    """How a run ended: `stopped` when `stop` finished first; `late` are the nodes cancelled
    (by the deadline or the stop) before they were done."""

    stopped: bool = False
    late: set[str] = field(default_factory=set)


async def run_graph(
    ids: Sequence[str],
    depends_on: Mapping[str, Sequence[str]],
    run: Callable[[str], Awaitable[None]],
    *,
    timeout: float,
    stop: Awaitable[object] | None = None,
) -> GraphRun:
    """Run every node once its dependencies have run, within `timeout` seconds.

    `run(id)` must answer its own failures (an exception escaping it is a bug and is
    raised here once the graph is over). `stop`, when it finishes, ends the run at once."""
    done = {i: asyncio.Event() for i in ids}

    async def node(node_id: str) -> None:
        for dep in depends_on.get(node_id, ()):
            await done[dep].wait()
        try:
            await run(node_id)
        finally:
            done[node_id].set()

    tasks = {asyncio.create_task(node(i), name=f"graph-node-{i}"): i for i in ids}
    watcher = asyncio.ensure_future(stop) if stop is not None else None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(tasks)
    outcome = GraphRun()
    try:
        while pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            waiting = pending | {watcher} if watcher is not None else pending
            finished, _ = await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if watcher is not None and watcher in finished:
                outcome.stopped = True
                break
            pending -= finished
    finally:
        if watcher is not None:
            watcher.cancel()
        for task in pending:
            task.cancel()  # cancels the grpc.aio call the node is awaiting: the backend sees CANCELLED
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    for task, node_id in tasks.items():
        if task in pending or task.cancelled():
            outcome.late.add(node_id)
        elif task.exception() is not None:  # `run` answers every failure; this is a bug
            raise task.exception()  # type: ignore[misc]
    return outcome
