#!/usr/bin/env python3
"""In-process timings of the request and response codecs on the demo's bodies.

Prints microseconds per call (best of several rounds) for: decoding the
benchmark's CreateBook body (`POST /v1/{parent=shelves/*}/books`, body "book",
path and query bindings), the same body with an unknown field (ignored by
default), and encoding ListBooks replies of 2 and 50 books under each response
print option, then milliseconds per MiB of JSON for large messages at three sizes (a
SearchBooks reply of 350, 3500 and 14000 books; a CreateBook body of 650, 6500 and 26000
tags): a cost per MiB that climbs with the size would be a per-field cost growing worse
than linearly. Run it before and after a codec change on the same machine; it asserts
nothing (timings belong in reports, not in tests).

    .venv/bin/python scripts/bench_codec.py
"""
from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from google.protobuf import duration_pb2, timestamp_pb2  # noqa: E402

from edgedemo import library_pb2  # noqa: E402
from scripts.bench_suite import LARGE_BOOKS, POST_BODY, large_reply  # noqa: E402
from transcoding.codec import RequestCodec, ResponseCodec  # noqa: E402
from transcoding.options import TranscodingOptions  # noqa: E402


def best_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def books(n: int) -> library_pb2.ListBooksResponse:
    reply = library_pb2.ListBooksResponse(next_page_token="b" * 24)
    for i in range(n):
        published = timestamp_pb2.Timestamp()
        published.FromJsonString("1974-05-01T00:00:00Z")
        reply.books.add(
            name=f"shelves/scifi/books/{i}", title="The Dispossessed: An Ambiguous Utopia", author="Ursula K. Le Guin",
            page_count=387 + i, isbn="978-0061054884", price_cents=1299, genre=library_pb2.SCIENCE_FICTION,
            tags=["anarchism", "physics", "classic"], publish_time=published,
            read_duration=duration_pb2.Duration(seconds=43200),
        )
    return reply


def main() -> None:
    descriptor = library_pb2.CreateBookRequest.DESCRIPTOR
    request = RequestCodec(descriptor, "book", ["parent"])
    body = POST_BODY.encode()
    unknown = json.dumps({**json.loads(POST_BODY), "subtitle": "new in v2", "series": {"name": "Hainish"}}).encode()
    bindings = [(("parent",), "shelves/poetry")]
    query = [("requestId", "bench-post")]
    print(f"request: CreateBook body ({len(body)} bytes)        "
          f"{best_us(lambda: request.decode(bindings, query, body, 'application/json'), 5000):7.2f} us")
    print(f"request: CreateBook body + 2 unknown fields  "
          f"{best_us(lambda: request.decode(bindings, query, unknown, 'application/json'), 5000):7.2f} us")
    variants = {
        "default": TranscodingOptions(),
        "use_proto_names": TranscodingOptions(use_proto_names=True),
        "emit_unpopulated": TranscodingOptions(emit_unpopulated=True),
    }
    # rows that exist from the bodies12 branch on (the script also runs against older trees)
    fields = TranscodingOptions.__dataclass_fields__
    if "enums_as_ints" in fields:
        variants["enums_as_ints"] = TranscodingOptions().replace(enums_as_ints=True)
    if "unset_messages_as_null" in fields:
        variants["grpc-gateway profile"] = TranscodingOptions().replace(
            emit_unpopulated=True, unset_messages_as_null=True)
    for count in (2, 50):
        reply = books(count)
        for name, options in variants.items():
            codec = ResponseCodec(library_pb2.ListBooksResponse.DESCRIPTOR, options=options)
            number = 2000 if count == 2 else 200
            print(f"response: ListBooks {count:2d} books, {name:26s}{best_us(lambda: codec.encode(reply), number):8.2f} us")
    large()


def large() -> None:
    codec = ResponseCodec(library_pb2.SearchBooksResponse.DESCRIPTOR)
    base = library_pb2.SearchBooksResponse.FromString(large_reply())
    for factor in (0.1, 1, 4):
        reply = library_pb2.SearchBooksResponse()
        while len(reply.books) < LARGE_BOOKS * factor:
            reply.books.extend(base.books[: int(LARGE_BOOKS * factor) - len(reply.books)])
        size = len(codec.encode(reply)[0])
        ms = best_us(lambda: codec.encode(reply), 1) / 1000
        print(f"response: SearchBooks {len(reply.books):5d} books ({size / 1024:6.0f} KiB)  {ms:7.2f} ms  "
              f"{ms / (size / 2**20):6.2f} ms/MiB")
    request = RequestCodec(library_pb2.CreateBookRequest.DESCRIPTOR, "book", ["parent"])
    bindings = [(("parent",), "shelves/poetry")]
    for tags in (650, 6500, 26000):
        body = json.dumps({**json.loads(POST_BODY), "tags": [f"tag-{i:05d}-of-a-long-mobile-upload" for i in
                                                             range(tags)]}).encode()
        ms = best_us(lambda: request.decode(bindings, [], body, "application/json"), 1) / 1000
        print(f"request:  CreateBook {tags:5d} tags ({len(body) / 1024:6.0f} KiB)     {ms:7.2f} ms  "
              f"{ms / (len(body) / 2**20):6.2f} ms/MiB")


if __name__ == "__main__":
    main()
