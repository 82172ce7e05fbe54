"""The protocol-neutral core (edge/core/) on its own: no HTTP, no adapter.

A call is given to `Core.run` as a resolved `CallContext` (a route, request
messages, metadata, a deadline) against a real gRPC backend, as a new client
protocol's adapter would give it; and the chain holds only the stages a config
enables.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from edge.backends import BackendRegistry
from edge.core import CallContext, CallRecord, Decode, Idempotency, Identity, Outcome, RateLimits
from edge.runtime import build_runtime
from tests.support.echo import echo_backend_running
from tests.support.gateway import gateway_config

ECHO_SET = Path(__file__).parent.parent / "protos" / "edgecompat" / "descriptors.binpb"


async def _with_core(config, scenario):
    registry = BackendRegistry(config)
    await registry.start(watch=False)
    runtime = await build_runtime(config, registry)
    try:
        return await scenario(runtime.core, registry)
    finally:
        for close in reversed(runtime.closers):
            await close()
        await registry.close()


def _context(registry: BackendRegistry, path: str, request, request_id: str) -> CallContext:
    route, _ = registry.table.lookup("POST", path)
    return CallContext(route, CallRecord(), {}, request_id, "POST", request=request, deadline=10.0,
                       metadata=[("x-request-id", request_id)])


def test_the_chain_holds_only_the_stages_a_config_enables(demo_backend) -> None:
    backends = [{"name": "demo", "target": demo_backend.target}]

    async def stages(core, registry):
        return [type(stage) for stage in core.stages]

    assert asyncio.run(_with_core(gateway_config(backends), stages)) == [Decode]
    keyed = gateway_config(backends, idempotency={}, rate_limits={"policies": []})
    assert asyncio.run(_with_core(keyed, stages)) == [RateLimits, Decode, Idempotency]
    assert Identity not in asyncio.run(_with_core(keyed, stages))


def test_a_client_stream_of_requests_arriving_over_time() -> None:
    """Requests from an async iterator (as a WebSocket adapter would hand them over), sent
    as they come: the backend reads all of them, with the call's metadata, and answers once."""
    with echo_backend_running(ECHO_SET) as echo:
        config = gateway_config([{"name": "echo", "target": echo.target}])

        async def scenario(core, registry) -> Outcome:
            ctx = _context(registry, "/v1/items:collect", None, "core-collect")

            async def requests() -> AsyncIterator:
                for i in range(5):
                    await asyncio.sleep(0.01)
                    yield _item(ctx, i)

            ctx.request = requests()
            return await core.run(ctx)

        outcome = asyncio.run(_with_core(config, scenario))
        assert outcome.code is grpc.StatusCode.OK and outcome.stream is None
        assert list(outcome.reply.tags) == ["0", "1", "2", "3", "4"]
        call = echo.calls_to("/Collect")[-1]
        assert len(call.requests) == 5 and call.header("x-request-id") == "core-collect"


def test_a_bidi_stream_answers_before_the_client_has_sent_everything() -> None:
    """The second request is sent only after the first reply arrived: requests and replies
    interleave, so a stream of requests over time is a real conversation."""
    with echo_backend_running(ECHO_SET) as echo:
        config = gateway_config([{"name": "echo", "target": echo.target}])

        async def scenario(core, registry) -> list[str]:
            ctx = _context(registry, "/v1/items:chat", None, "core-chat")
            first_reply = asyncio.Event()

            async def requests() -> AsyncIterator:
                yield _item(ctx, 0)
                await asyncio.wait_for(first_reply.wait(), 10)
                yield _item(ctx, 1)

            ctx.request = requests()
            outcome = await core.run(ctx)
            assert outcome.stream is not None and ctx.record.called
            names = []
            try:
                while (message := await outcome.stream.next()) is not None:
                    names.append(message.name)
                    first_reply.set()
            finally:
                outcome.stream.cancel()
            return names

        assert asyncio.run(_with_core(config, scenario)) == ["n0", "n1"]
        assert len(echo.calls_to("/Chat")[-1].requests) == 2


def _item(ctx: CallContext, i: int):
    return ctx.route.request_class(name=f"n{i}", tags=[str(i)])
