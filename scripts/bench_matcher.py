#!/usr/bin/env python3
"""What one route lookup costs: `PathMatcher.lookup` on the demo's routes, in process.

Builds the matcher from the demo backend's descriptor set (every binding of
every method, as the gateway would) and times lookups of a fixed mix of
request paths: plain ones, variables, verbs, a percent-encoded value, a
multi-segment name, a 405 and a 404. Prints the mean cost per lookup of each
path and of the whole mix (best of several rounds, so a busy machine
inflates the numbers less). Run it before and after a matcher change, on
the same machine:

    .venv/bin/python scripts/bench_matcher.py [--rounds 7] [--number 20000] [--profile edge]

Numbers only; nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transcoding.descriptors import load_from_file  # noqa: E402
from transcoding.httprule import bindings_for  # noqa: E402
from transcoding.matcher import MethodNotAllowed, NoRoute, PathMatcher  # noqa: E402

DEMO_SET = ROOT / "protos" / "edgedemo" / "descriptors.binpb"

# (HTTP method, raw path): what the demo's clients send, plus the two error answers.
MIX = [
    ("GET", "/v1/shelves"),
    ("GET", "/v1/shelves/scifi"),
    ("GET", "/v1/shelves/scifi/books/dune"),
    ("GET", "/v1/books/dune"),
    ("PATCH", "/v1/shelves/scifi/books/dune"),
    ("POST", "/v1/shelves/scifi/books/dune:move"),
    ("GET", "/v1/books:search"),
    ("GET", "/v1/shelves:list"),
    ("GET", "/v1/users/me"),
    ("GET", "/v1/users/ada%20lovelace"),
    ("GET", "/v1/shelves/scifi/books:stream"),
    ("PUT", "/v1/shelves/scifi"),  # 405
    ("GET", "/v2/nothing/here"),  # 404
]


def build_matcher(profile: str | None) -> PathMatcher:
    descriptors = load_from_file(DEMO_SET)
    if profile is None:
        matcher: PathMatcher = PathMatcher()
    else:  # matchers that take the options table
        from transcoding.options import PROFILES

        matcher = PathMatcher(PROFILES[profile])
    for service_name in descriptors.services:
        for method in descriptors.pool.FindServiceByName(service_name).methods:
            for binding in bindings_for(method):
                matcher.add(binding.http_method, binding.template, method.full_name)
    return matcher


def lookup_once(matcher: PathMatcher, http_method: str, path: str) -> None:
    try:
        matcher.lookup(http_method, path)
    except (NoRoute, MethodNotAllowed):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000, help="lookups per path per round")
    parser.add_argument("--profile", help="transcoding profile for matchers that take options")
    args = parser.parse_args()
    matcher = build_matcher(args.profile)
    total = 0.0
    print(f"{'method':7} {'path':40} {'us/lookup':>10}")
    for http_method, path in MIX:
        best = min(
            timeit.repeat(lambda: lookup_once(matcher, http_method, path), number=args.number, repeat=args.rounds)
        )
        per = best / args.number * 1e6
        total += per
        print(f"{http_method:7} {path:40} {per:10.2f}")
    print(f"{'mix':48} {total / len(MIX):10.2f}  (mean of the {len(MIX)} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
