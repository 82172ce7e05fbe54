"""What the demo server saw, for tests to assert on, plus test knobs.

Gateway tests need to prove things only the backend can observe: that a header
was forwarded (or stripped), that a retried request ran exactly once, that a
deadline arrived, that a client disconnect cancelled the call. A server
interceptor records every call before the servicer runs and notes how it ended.

Two request-metadata knobs shape a call before the servicer sees it:
`x-demo-delay-ms: <n>` sleeps first (for deadline, timeout and batch tests) and
`x-demo-fail: <CODE>` (a `grpc.StatusCode` name or number) fails the call
without running the servicer. Every demo call answers with header metadata
`x-demo-server: edgedemo` and `x-demo-call: <n>` (the n-th call of that
method), so tests can see response metadata and tell a replayed response from a
fresh execution. The recorder is read from other threads (tests run
the server on a loop thread of its own), so its state sits behind a lock.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

DELAY_KEY = "x-demo-delay-ms"
FAIL_KEY = "x-demo-fail"
MAX_DELAY_MS = 60_000
RECORDED_PREFIX = "/edgedemo."
SERVER_KEY = "x-demo-server"
CALL_KEY = "x-demo-call"

MetadataValue = str | bytes


@dataclass
class CallRecord:
    """One call to a demo method.

    `code` stays None until the server has finished the call, which can be just
    after the client saw the status (an abort answers first): wait with
    `CallRecorder.wait_for(method, finished=True)` before asserting on it.
    """

    method: str  # short name, e.g. "GetBook"
    path: str  # "/edgedemo.library.v1.LibraryService/GetBook"
    metadata: tuple[tuple[str, MetadataValue], ...]
    time_remaining: float | None  # seconds left of the client's deadline on arrival
    code: grpc.StatusCode | None = None
    number: int = 0  # this was the n-th call of `method`

    def header(self, key: str) -> MetadataValue | None:
        """First value of a metadata key (keys are lower case on the wire)."""
        values = self.headers(key)
        return values[0] if values else None

    def headers(self, key: str) -> list[MetadataValue]:
        key = key.lower()
        return [value for name, value in self.metadata if name == key]


class CallRecorder:
    """Counts calls per method and keeps the last `keep` calls' metadata."""

    def __init__(self, keep: int = 256) -> None:
        self._cond = threading.Condition()
        self.calls: collections.Counter[str] = collections.Counter()
        self.cancelled: collections.Counter[str] = collections.Counter()
        self.paths: collections.Counter[str] = collections.Counter()  # every path seen, any service
        self.records: collections.deque[CallRecord] = collections.deque(maxlen=keep)

    @property
    def metadata(self) -> list[dict[str, MetadataValue]]:
        """Metadata of the kept calls, oldest first (a repeated key keeps its last value)."""
        with self._cond:
            return [dict(record.metadata) for record in self.records]

    def last(self, method: str | None = None) -> CallRecord:
        """The most recent call (to `method`, if given); LookupError when there is none."""
        with self._cond:
            for record in reversed(self.records):
                if method is None or record.method == method:
                    return record
        raise LookupError(f"no recorded call to {method or 'any method'}")

    def records_for(self, method: str) -> list[CallRecord]:
        with self._cond:
            return [record for record in self.records if record.method == method]

    def reset(self) -> None:
        with self._cond:
            self.calls.clear()
            self.cancelled.clear()
            self.paths.clear()
            self.records.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0, *, finished: bool = False) -> bool:
        """Block (another thread than the server's) until `method` was called `count`
        times, or - with `finished` - until that many of its calls have ended."""

        def reached() -> bool:
            if not finished:
                return self.calls[method] >= count
            ended = sum(1 for r in self.records if r.method == method and r.code is not None)
            return ended >= count

        with self._cond:
            return self._cond.wait_for(reached, timeout)

    def _saw_path(self, path: str) -> None:
        with self._cond:
            self.paths[path] += 1

    def _start(self, path: str, context: grpc.aio.ServicerContext) -> CallRecord:
        record = CallRecord(
            method=path.rsplit("/", 1)[-1],
            path=path,
            metadata=tuple((m.key, m.value) for m in context.invocation_metadata() or ()),
            time_remaining=context.time_remaining(),
        )
        with self._cond:
            self.calls[record.method] += 1
            record.number = self.calls[record.method]
            self.records.append(record)
            self._cond.notify_all()
        return record

    def _finish(self, record: CallRecord, code: grpc.StatusCode) -> None:
        with self._cond:
            record.code = code
            if code is grpc.StatusCode.CANCELLED:
                self.cancelled[record.method] += 1
            self._cond.notify_all()


def _final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK


def _metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key and isinstance(item.value, str):
            return item.value.strip()
    return None


async def _begin(context: grpc.aio.ServicerContext, record: CallRecord) -> None:
    await context.send_initial_metadata(((SERVER_KEY, "edgedemo"), (CALL_KEY, str(record.number))))
    await _apply_knobs(context)


async def _apply_knobs(context: grpc.aio.ServicerContext) -> None:
    delay = _metadata_value(context, DELAY_KEY)
    if delay:
        try:
            delay_ms = int(delay)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{DELAY_KEY} must be an integer, got {delay!r}")
        await asyncio.sleep(min(max(delay_ms, 0), MAX_DELAY_MS) / 1000)
    fail = _metadata_value(context, FAIL_KEY)
    if fail:
        code = next(
            (c for c in grpc.StatusCode if c.name == fail.upper() or str(c.value[0]) == fail),
            None,
        )
        if code is None or code is grpc.StatusCode.OK:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{FAIL_KEY} names no error code: {fail!r}")
        await context.abort(code, f"failure injected by {FAIL_KEY}")


class RecordingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every demo method handler so the recorder sees each call start and end."""

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        path = handler_call_details.method
        self.recorder._saw_path(path)
        handler = await continuation(handler_call_details)
        if handler is None or not path.startswith(RECORDED_PREFIX):
            return handler
        recorder = self.recorder

        # grpc.aio only awaits handlers that are coroutine / async-generator
        # functions (anything else goes to a thread pool), hence no lambdas here.
        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                record = recorder._start(path, context)
                error: BaseException | None = None
                try:
                    await _begin(context, record)
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    recorder._finish(record, _final_code(context, error))

            factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            wrapped = unary_response
        else:
            inner_stream = handler.unary_stream or handler.stream_stream

            async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                record = recorder._start(path, context)
                error: BaseException | None = None
                try:
                    await _begin(context, record)
                    async for response in inner_stream(request, context):
                        yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    recorder._finish(record, _final_code(context, error))

            factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
            wrapped = stream_response
        return factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
