#!/usr/bin/env python3
"""The "what a user would write instead" baseline for scripts/bench.

A hand-written FastAPI app with the two routes the benchmark calls, each
parsing JSON with `json_format` and calling the demo backend over one shared
`grpc.aio` channel: no route table, no auth, no limits, no error mapping
beyond the gRPC status code. Served like the gateway (uvicorn, uvloop,
httptools, no access log), so the comparison is about the request path.

    .venv/bin/python scripts/bench_fastapi_passthrough.py --port 8090 --backend 127.0.0.1:50051
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "protos")]

import grpc
import uvicorn
from fastapi import FastAPI, Request, Response
from google.protobuf import json_format

from edgedemo import library_pb2, library_pb2_grpc

JSON = "application/json"


def build_app(backend: str) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    state: dict[str, library_pb2_grpc.LibraryServiceStub] = {}

    @app.on_event("startup")
    async def connect() -> None:
        state["stub"] = library_pb2_grpc.LibraryServiceStub(grpc.aio.insecure_channel(backend))

    def reply(message) -> Response:
        return Response(json_format.MessageToJson(message, indent=None), media_type=JSON)

    def failed(err: grpc.aio.AioRpcError) -> Response:
        return Response(f'{{"code": {err.code().value[0]}, "message": "{err.details()}"}}', status_code=500, media_type=JSON)

    @app.get("/v1/shelves/{shelf}/books")
    async def list_books(shelf: str, pageSize: int = 0, genre: str = "") -> Response:
        request = library_pb2.ListBooksRequest(parent=f"shelves/{shelf}", page_size=pageSize)
        if genre:
            request.genre = library_pb2.Genre.Value(genre)
        try:
            return reply(await state["stub"].ListBooks(request, timeout=10))
        except grpc.aio.AioRpcError as err:
            return failed(err)

    @app.post("/v1/shelves/{shelf}/books")
    async def create_book(shelf: str, request: Request, requestId: str = "") -> Response:
        message = library_pb2.CreateBookRequest(parent=f"shelves/{shelf}", request_id=requestId)
        json_format.Parse(await request.body(), message.book)
        try:
            return reply(await state["stub"].CreateBook(message, timeout=10))
        except grpc.aio.AioRpcError as err:
            return failed(err)

    return app


def build_bare_app(backend: str):
    """The same two calls as a bare ASGI app: no framework, no checks at all.

    What "the least Python one could write" costs; not something to deploy."""
    from urllib.parse import parse_qs

    state: dict[str, library_pb2_grpc.LibraryServiceStub] = {}
    json_header = [(b"content-type", b"application/json")]

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        stub = state.get("stub")
        if stub is None:
            stub = state["stub"] = library_pb2_grpc.LibraryServiceStub(grpc.aio.insecure_channel(backend))
        shelf = scope["path"].split("/")[3]
        query = parse_qs(scope["query_string"].decode())
        if scope["method"] == "GET":
            request = library_pb2.ListBooksRequest(parent=f"shelves/{shelf}", page_size=int(query.get("pageSize", ["0"])[0]))
            if "genre" in query:
                request.genre = library_pb2.Genre.Value(query["genre"][0])
            call = stub.ListBooks(request, timeout=10)
        else:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            request = library_pb2.CreateBookRequest(parent=f"shelves/{shelf}", request_id=query.get("requestId", [""])[0])
            json_format.Parse(body, request.book)
            call = stub.CreateBook(request, timeout=10)
        payload = json_format.MessageToJson(await call, indent=None).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": json_header + [(b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--backend", default="127.0.0.1:50051")
    parser.add_argument("--bare", action="store_true", help="serve the bare ASGI floor instead of FastAPI")
    args = parser.parse_args(argv)
    uvicorn.run(build_bare_app(args.backend) if args.bare else build_app(args.backend), host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", server_header=False)


if __name__ == "__main__":
    main()
