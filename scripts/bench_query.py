#!/usr/bin/env python3
"""Per-request cost of query parameters on the demo's list call (ListBooks):
`GET /v1/shelves/scifi/books?pageSize=2&genre=SCIENCE_FICTION`.

Times, in-process and without a network, the three steps a request pays for
its query string: parsing it (`edge.protocols.rest.parse_query`), setting the
fields (the route's `RouteQuery.apply`, or on older code `QueryMapper.apply`
with `parent` bound by the path: the call the codec makes) and the whole
request decode (`RequestCodec.decode`, path + query, no body). Prints the
best-of-N microseconds per call of each. A script that prints numbers, not a
test: compare two checkouts on the same machine, in alternation (it runs
against the checkout it sits in).

    .venv/bin/python scripts/bench_query.py [--rounds 7] [--number 20000]
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from edgedemo import library_pb2  # noqa: E402

from edge.protocols.rest import parse_query  # noqa: E402
from transcoding.codec import RequestCodec  # noqa: E402

QUERY = b"pageSize=2&genre=SCIENCE_FICTION"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    descriptor = library_pb2.ListBooksRequest.DESCRIPTOR
    codec = RequestCodec(descriptor, "", ["parent"])
    mapper = codec._query
    params = parse_query(QUERY)
    bindings = [(("parent",), "shelves/scifi")]
    cls = library_pb2.ListBooksRequest
    route_query = getattr(codec, "query", None)  # the route's own rules (newer code)
    bound = getattr(codec, "_bound", frozenset({"parent"}))

    def run_apply() -> None:
        message = cls()
        if route_query is not None:
            route_query.apply(message, params)
        else:
            mapper.apply(message, params, bound)

    cases = {
        "parse_query": lambda: parse_query(QUERY),
        "QueryMapper.apply": run_apply,
        "RequestCodec.decode": lambda: codec.decode(bindings, params, b"", None),
    }
    for name, func in cases.items():
        best = min(timeit.repeat(func, number=args.number, repeat=args.rounds))
        print(f"{name:22s} {best / args.number * 1e6:7.2f} us")


if __name__ == "__main__":
    main()
