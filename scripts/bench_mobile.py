#!/usr/bin/env python3
"""What issue 14's features buy a mobile client: a composed endpoint's latency
against its slowest part, and the bytes `fields` saves on the demo's list call.

Used by scripts/bench_suite.py (the `mobile` measurement, against a gateway of
its own in front of the Python demo backend, whose `x-demo-delay-ms` sleeps
give each part a known backend time), or alone:

    .venv/bin/python scripts/bench_mobile.py [--rounds 15]

which starts the demo backend and a gateway in this process (loopback only).

The composed route has three parts: `shelf` (GetShelf), `books` (ListBooks,
which needs the shelf's name, so it runs after it) and `users` (ListUsers, in
parallel with both). Their backend delays come from the query (the parts'
`headers` read `{{query...}}`), 10, 20 and 50 ms by default: the dependent chain
(shelf then books, ~30 ms) is shorter than the slowest part (users, ~50 ms), so
the composition can at best take as long as its slowest part alone; the ratio
composed / slowest part alone is the overhead (issue 14's target: <= 1.2x).
A second run makes the chain the critical path (users 20 ms): then the floor is
shelf alone + books alone, one after the other.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DELAY_HEADER = "x-demo-delay-ms"
LIST_PATH = "/v1/shelves/scifi/books"
LIST_FIELDS = "books(name,title),nextPageToken"
SCREEN = "/v1/screens/bench/scifi"
PARTS = {  # part -> (route called alone, query parameter carrying its delay)
    "shelf": ("/v1/shelves/scifi", "shelfDelay"),
    "books": ("/v1/shelves/scifi/books", "booksDelay"),
    "users": ("/v1/users", "usersDelay"),
}

COMPOSE_YAML = f"""\
compose:
  - route: GET {SCREEN.rsplit('/', 1)[0]}/{{shelf}}
    parts:
      - id: shelf
        method: edgedemo.library.v1.LibraryService/GetShelf
        request: {{name: "shelves/{{{{path.shelf}}}}"}}
        headers: {{{DELAY_HEADER}: "{{{{query.shelfDelay}}}}"}}
      - id: books
        method: edgedemo.library.v1.LibraryService/ListBooks
        request: {{parent: "{{{{shelf.body.name}}}}"}}
        headers: {{{DELAY_HEADER}: "{{{{query.booksDelay}}}}"}}
      - id: users
        method: edgedemo.users.v1.UserService/ListUsers
        headers: {{{DELAY_HEADER}: "{{{{query.usersDelay}}}}"}}
"""


def compose_section() -> list[str]:
    """The config lines bench_suite.py adds to the gateway this measurement runs against."""
    return COMPOSE_YAML.splitlines()


def _median_ms(rounds: int, action: Callable[[], None]) -> float:
    action()  # warm-up: connection, plans, channel
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def compose_latency(base: str, rounds: int, delays: dict[str, int]) -> dict[str, Any]:
    """The composed screen against each of its parts alone, with these backend delays (ms)."""
    import httpx

    query = "&".join(f"{PARTS[p][1]}={d}" for p, d in delays.items())
    with httpx.Client(base_url=base, timeout=30) as client:
        def screen() -> None:
            r = client.get(f"{SCREEN}?{query}")
            assert r.status_code == 200 and set(r.json()) == set(PARTS), r.text[:300]

        out: dict[str, Any] = {"delays_ms": delays, "composed_ms": _median_ms(rounds, screen), "parts_alone_ms": {}}
        for part, (path, _) in PARTS.items():
            def alone(path: str = path, delay: int = delays[part]) -> None:
                client.get(path, headers={DELAY_HEADER: str(delay)}).raise_for_status()

            out["parts_alone_ms"][part] = _median_ms(rounds, alone)
    alone_ms = out["parts_alone_ms"]
    out["slowest_part_ms"] = max(alone_ms.values())
    out["critical_path_ms"] = max(alone_ms["shelf"] + alone_ms["books"], alone_ms["users"])
    out["composed_over_slowest"] = out["composed_ms"] / out["slowest_part_ms"]
    out["composed_over_critical_path"] = out["composed_ms"] / out["critical_path_ms"]
    return out


def fields_bytes(base: str) -> dict[str, Any]:
    """The demo's list call with and without `fields`, as sent (identity and gzip)."""
    import httpx

    out: dict[str, Any] = {"path": LIST_PATH, "fields": LIST_FIELDS}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, params in (("whole", {}), ("fields", {"fields": LIST_FIELDS})):
            plain = client.get(LIST_PATH, params=params, headers={"accept-encoding": "identity"})
            plain.raise_for_status()
            out[f"{name}_bytes"] = len(plain.content)
            out[f"{name}_gzip_bytes"] = len(gzip.compress(plain.content, 6))  # what a gzip reply would carry
    out["saved_share"] = 1 - out["fields_bytes"] / out["whole_bytes"]
    out["saved_share_gzip"] = 1 - out["fields_gzip_bytes"] / out["whole_gzip_bytes"]
    return out


def measure(base: str, rounds: int) -> dict[str, Any]:
    return {
        "compose": compose_latency(base, rounds, {"shelf": 10, "books": 20, "users": 50}),
        "compose_chain": compose_latency(base, rounds, {"shelf": 10, "books": 20, "users": 20}),
        "fields": fields_bytes(base),
    }


def report(result: dict[str, Any]) -> list[str]:
    lines = []
    for key, what in (("compose", "slowest part alone"), ("compose_chain", "dependent chain alone")):
        c = result[key]
        floor, ratio = ((c["slowest_part_ms"], c["composed_over_slowest"]) if key == "compose"
                        else (c["critical_path_ms"], c["composed_over_critical_path"]))
        delays = ", ".join(f"{p} {d}" for p, d in c["delays_ms"].items())
        lines.append(f"composed route, 3 parts (delays ms: {delays}; books after shelf): {c['composed_ms']:.1f} ms, "
                     f"{what} {floor:.1f} ms ({ratio:.2f}x)")
    f = result["fields"]
    lines.append(f"fields={f['fields']} on GET {f['path']}: {f['whole_bytes']} -> {f['fields_bytes']} bytes "
                 f"({f['saved_share']:.0%} saved; gzip {f['whole_gzip_bytes']} -> {f['fields_gzip_bytes']}, "
                 f"{f['saved_share_gzip']:.0%})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="requests per median (1-200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]
    import yaml

    from tests.support.backends import demo_backend_running
    from tests.support.gateway import gateway_config, running_gateway

    compose = yaml.safe_load(COMPOSE_YAML)["compose"]
    with demo_backend_running() as backend:
        config = gateway_config([{"name": "demo", "target": backend.target}],
                                transcoding={"forward_headers": [DELAY_HEADER]}, compose=compose,
                                access_log={"enabled": False})
        with running_gateway(config) as gw:
            result = measure(gw.url, max(1, min(args.rounds, 200)))
    print(json.dumps(result, indent=2) if args.json else "\n".join(report(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
