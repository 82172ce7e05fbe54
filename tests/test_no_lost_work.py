"""No lost and no duplicated work: concurrent clients create books with Idempotency-Keys,
hang up at random moments (mid-body, mid-call) and retry until they hold an answer.
Afterwards the demo backend holds exactly one book per distinct key, every client of
a key got the same book, and no key was left without one.

Exactly-once here is the gateway's doing: CreateBook's own `request_id`
de-duplication is never used, and what the backend executed is read from its state
(one book per execution), cross-checked with the calls its recorder saw. Real
gateway, real demo backend, the shared Redis as the idempotency store; seeded, so a
failing interleaving can be replayed.
"""
from __future__ import annotations

import collections
import concurrent.futures
import json
import random
import socket
import time
import uuid

import httpx
import pytest

from edgedemo.recording import CallRecorder
from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway

KEYS = 60
CLIENTS = 12
SEED = 8
DELAY = "x-demo-delay-ms"


@pytest.fixture
def stack(redis_target, redis_prefix):
    with demo_backend_running(recorder=CallRecorder(keep=10_000)) as backend:
        config = gateway_config(
            [{"name": "demo", "target": backend.target, "timeout": "10s"}],
            transcoding={"forward_headers": [DELAY]},
            store={"backend": "redis", "redis": {"url": redis_target.url, "key_prefix": redis_prefix, "timeout": "1s"}},
            idempotency={"lock_ttl": "30s"},
            batch={"max_concurrency": 4},
            access_log={"enabled": False},
        )
        with running_gateway(config) as gw:
            yield gw, backend


def _hang_up(port: int, body: bytes, headers: dict[str, str], rng: random.Random) -> None:
    """Send (part of) the request and close the connection at a random moment."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST /v1/shelves/scifi/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if rng.random() < 0.3:
            sock.sendall(request[: rng.randrange(len(request) - len(body), len(request))])  # mid-body
        else:
            sock.sendall(request)
            time.sleep(rng.uniform(0, 0.2))  # mid-call (or just after it)


def _create(gw, key: str, rng: random.Random) -> tuple[str, int, int]:
    """One client's way to a book for `key`: maybe hang up first, then retry until answered."""
    body = json.dumps({"title": f"no-lost-{key}", "author": "Client"}).encode()
    headers = {"idempotency-key": key, DELAY: str(rng.choice([0, 20, 80, 150]))}
    hangups = 0
    for _ in range(rng.randrange(0, 3)):
        _hang_up(gw.server.public.port, body, headers, rng)
        hangups += 1
    attempts = 0
    with httpx.Client(base_url=gw.url, timeout=20) as c:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            attempts += 1
            r = c.post("/v1/shelves/scifi/books", content=body, headers={**headers, "content-type": "application/json"})
            if r.status_code == 200:
                return r.json()["name"], hangups, attempts
            assert r.status_code == 409, (key, r.status_code, r.text)  # the first attempt is still running
            time.sleep(float(r.headers.get("retry-after", "1")) / 10)
    raise AssertionError(f"key {key} got no answer within 30 s")


def _books(backend) -> collections.Counter[str]:
    async def titles() -> list[str]:
        return [book.title for book in backend.server.library.books.values()]

    return collections.Counter(backend.run(titles()))


def test_concurrent_clients_hanging_up_and_retrying_create_each_book_once(stack):
    gw, backend = stack
    rng = random.Random(SEED)
    keys = [f"nlw-{uuid.UUID(int=rng.getrandbits(128)).hex}" for _ in range(KEYS)]
    # Several clients race on some keys (a mobile app retrying from two places).
    work = [(key, random.Random(rng.random())) for key in keys + rng.sample(keys, KEYS // 3)]
    rng.shuffle(work)
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(lambda item: (item[0], *_create(gw, *item)), work))

    answers: dict[str, set[str]] = collections.defaultdict(set)
    for key, book, _, _ in outcomes:
        answers[key].add(book)
    assert set(answers) == set(keys)
    assert all(len(books) == 1 for books in answers.values()), answers  # one book per key, whoever asked

    titles = _books(backend)
    executed = {key: titles[f"no-lost-{key}"] for key in keys}
    assert all(count == 1 for count in executed.values()), {k: n for k, n in executed.items() if n != 1}
    # The recorder agrees: one CreateBook that ran to the end per key (by the derived key the gateway sends).
    finished = collections.Counter(r.header("idempotency-key") for r in backend.recorder.records_for("CreateBook")
                                   if r.code is not None and r.code.name == "OK")
    assert len(finished) == KEYS and set(finished.values()) == {1}
    assert all(r.header("idempotency-key") for r in backend.recorder.records_for("CreateBook"))
    hangups = sum(h for _, _, h, _ in outcomes)
    assert hangups >= KEYS // 2  # the run did hang up a lot


def test_batch_items_with_keys_run_once_when_the_batch_client_hangs_up(stack):
    """Items carrying their own keys inside batches whose clients hang up just as the backend
    finishes: a batch cancels its outstanding items then, and an item cancelled after the
    backend acted must not be run again by its retry (it finishes, and its retry replays)."""
    gw, backend = stack
    rng = random.Random(SEED + 1)
    keys = []
    for round_ in range(12):
        group = [f"nlw-batch-{round_}-{n}-{rng.getrandbits(32):08x}" for n in range(4)]
        keys += group
        delay = rng.choice([20, 40, 60])

        def body(pending: list[str]) -> bytes:
            return json.dumps({"requests": [
                {"id": f"i{n}", "method": "POST", "url": "/v1/shelves/scifi/books",
                 "headers": {"Idempotency-Key": key, DELAY: str(delay)}, "body": {"title": f"no-lost-{key}"}}
                for n, key in enumerate(pending)]}).encode()

        first = body(group)
        with socket.create_connection(("127.0.0.1", gw.server.public.port), timeout=5) as sock:
            sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(first) + first)
            time.sleep((delay + rng.uniform(-3, 3)) / 1000)  # around the moment the backend acts
        pending = sorted(group)
        with httpx.Client(base_url=gw.url, timeout=20) as c:
            deadline = time.monotonic() + 30
            while pending and time.monotonic() < deadline:
                r = c.post("/v1/batch", content=body(pending), headers={"content-type": "application/json"})
                assert r.status_code == 200, r.text
                statuses = [item["status"] for item in r.json()["responses"]]
                assert set(statuses) <= {200, 409}, r.text
                pending = [key for key, status in zip(pending, statuses) if status != 200]
                if pending:
                    time.sleep(0.02)
        assert not pending, pending
    titles = _books(backend)
    executed = {key: titles[f"no-lost-{key}"] for key in keys}
    assert all(count == 1 for count in executed.values()), {k: n for k, n in executed.items() if n != 1}
