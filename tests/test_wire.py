"""The coalescing httptools protocol: same bytes on the wire, fewer writes.

A real uvicorn server on an ephemeral port with `CoalescingHttpToolsProtocol`
and raw sockets as clients.
"""
from __future__ import annotations

import asyncio
import socket

import uvicorn

from edge.wire import CoalescingHttpToolsProtocol, CoalescingTransport


async def _app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        release: asyncio.Event = _app.release  # type: ignore[attr-defined]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await release.wait()  # the client must have "first" before "second" is produced
        await send({"type": "http.response.body", "body": b"second\n", "more_body": False})
        return
    body = b"hello " + path.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve(run):
    _app.release = asyncio.Event()  # type: ignore[attr-defined]
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, lifespan="off", loop="none",
                            http=CoalescingHttpToolsProtocol, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        await run(port)
    finally:
        server.should_exit = True
        await task


async def _read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    return await asyncio.wait_for(reader.readuntil(marker), 10)


def test_keep_alive_requests_get_whole_replies():
    async def run(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(3):
            writer.write(f"GET /r{n} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            head = await _read_until(reader, b"\r\n\r\n")
            body = f"hello /r{n}".encode()
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and f"content-length: {len(body)}\r\n".encode() in head
            assert await asyncio.wait_for(reader.readexactly(len(body)), 10) == body
        writer.close()

    asyncio.run(_serve(run))


def test_connection_close_reply_is_sent_before_the_close():
    async def run(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /close HTTP/1.1\r\nhost: x\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 10)  # until EOF
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhello /close")
        writer.close()

    asyncio.run(_serve(run))


def test_a_stream_chunk_leaves_before_the_handler_continues():
    async def run(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        await _read_until(reader, b"\r\n\r\n")
        assert b"first\n" in await _read_until(reader, b"first\n")
        _app.release.set()  # type: ignore[attr-defined]
        assert b"second\n" in await _read_until(reader, b"second\n")
        writer.close()

    asyncio.run(_serve(run))


def test_writes_of_one_loop_pass_leave_in_one_send():
    async def run():
        received: list[bytes] = []
        got = asyncio.Event()

        async def peer(reader, writer):
            received.append(await reader.read(65536))  # one recv: whatever the first send carried
            got.set()
            writer.close()

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = CoalescingTransport(transport, loop)
        await asyncio.sleep(0.05)  # the peer is waiting in its recv
        wrapped.write(b"head\r\n\r\n")
        wrapped.write(b"")
        wrapped.write(b"body")
        assert wrapped.get_write_buffer_size() >= len(b"head\r\n\r\nbody")
        await asyncio.wait_for(got.wait(), 10)
        assert received == [b"head\r\n\r\nbody"]
        wrapped.close()
        server.close()
        await server.wait_closed()

    asyncio.run(run())
