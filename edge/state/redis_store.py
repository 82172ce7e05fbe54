"""Redis state store (`redis.asyncio`, standalone or Cluster), shared by a fleet.

Each operation is one EVALSHA of a Lua script from `lua/` (loaded once;
redis-py reloads it on NOSCRIPT), so it is atomic and costs one round trip.
`admit` (a request's limits and its idempotency reservation) is one script
made of the two; on Redis Cluster their keys live in different slots (all
rate-limit keys share one hash tag, each record has its own), so there it is
the two scripts sent concurrently: still one round trip of waiting, two
commands, and a refused request's reservation is released (a third, only then).
Calls of one script made in one event-loop turn (`rate_limit`, `admit`,
`complete`) go in one pipeline (`batching.py`): one round trip, one wake-up.
Rate limits use the Redis server clock, so every gateway agrees on time.
See `keys.py` and docs/state.md for the key schema; every key has a TTL.

Calls go through a circuit breaker with a short timeout and no retries: a
failed call raises `StoreUnavailable` and the engine applies its failure
mode at once; while the breaker is open calls fail without touching the network.

Every new connection asks the server for its `run_id` (one INFO, only when a
connection is opened). A different run_id at an address seen before means
that Redis restarted (or another server took over the address): whatever it
did not persist is gone, in-flight idempotency locks included. Listeners in
`restart_listeners` hear of it before any command runs on the new server.
"""
from __future__ import annotations

import asyncio
import logging
from importlib import resources
from typing import Any, Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..unique import unique_hex
from . import algorithms
from .batching import ScriptBatcher
from .breaker import CircuitBreaker
from .config import RedisConfig
from .errors import StoreUnavailable
from .keys import idempotency_key, rate_limit_key
from .store import Admission, LimitCheck, LimitResult, Reservation, ReservationState, ReserveRequest, StoreStats, \
    give_back

log = logging.getLogger("edge.state.redis")

# what a store that cannot answer raises: availability problems, never request errors
_FAILURES = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)
_SCRIPTS = ("ratelimit", "idem_reserve", "idem_complete", "idem_release", "admit")


def _lua(name: str) -> str:
    if name == "admit":  # the two scripts as functions of (KEYS, ARGV), then the part that calls them
        return (f"local function rate_limit(KEYS, ARGV)\n{_lua('ratelimit')}\nend\n"
                f"local function reserve(KEYS, ARGV)\n{_lua('idem_reserve')}\nend\n"
                f"{_read('admit')}")
    return _read(name)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua").joinpath(f"{name}.lua").read_text()


def _info_fields(info: Any) -> dict[str, str]:
    text = info.decode("utf-8", "replace") if isinstance(info, (bytes, bytearray)) else str(info)
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000 + 0.999))


class RedisStore:
    name = "redis"
    shared = True

    def __init__(self, config: RedisConfig, *, client: Any = None, batch: bool = True) -> None:
        """`batch=False` sends every call alone (scripts/bench_state.py compares)."""
        self.config = config
        self.prefix = config.key_prefix
        self.rl_tag = config.rate_limit_hash_tag
        self.stats = StoreStats()
        self.restart_listeners: list[Callable[[str, bool], None]] = []  # (node, reloaded from an AOF)
        self.restarts = 0
        self._run_ids: dict[str, str] = {}
        self.breaker = CircuitBreaker(f"redis {config.url}", failure_threshold=config.breaker.failure_threshold,
                                      open_seconds=config.breaker.open_for)
        self.client = client if client is not None else self._connect(config)
        self._scripts = {name: self.client.register_script(_lua(name)) for name in _SCRIPTS}
        # `await self._limits(keys, args)`: the script's answer, sent with the other calls of this loop
        # turn in one pipeline (not on Redis Cluster: a pipeline there splits by slot anyway). A charge
        # or an admission whose caller left before its turn's pipeline went is not sent (it was never
        # made); a completion is.
        batching = batch and not config.cluster
        self._limits = self._sender("ratelimit", "rate_limit", batching, drop_abandoned=True)
        self._admissions = self._sender("admit", "admit", batching, drop_abandoned=True)
        self._completions = self._sender("idem_complete", "complete", batching, drop_abandoned=False)
        # an operation may also wait for a pool connection: bound the whole call, not only the socket
        self._deadline = config.timeout * 2 + 0.05

    def _sender(self, script: str, op: str, batching: bool, *,
                drop_abandoned: bool) -> Callable[[list[Any], list[Any]], Awaitable[Any]]:
        """How one operation's script call goes: batched per loop turn, or alone."""
        registered = self._scripts[script]
        if batching:
            return ScriptBatcher(self.client, registered, self._call, op, drop_abandoned=drop_abandoned)

        async def alone(keys: list[Any], args: list[Any]) -> Any:
            return await self._call(op, registered, keys=keys, args=args)
        return alone

    def _connect(self, config: RedisConfig) -> Any:
        common: dict[str, Any] = dict(
            socket_timeout=config.timeout, socket_connect_timeout=config.timeout,
            retry=Retry(NoBackoff(), 0), decode_responses=False,
        )
        if config.cluster:
            cluster = RedisCluster.from_url(config.url, max_connections=config.max_connections, **common)
            self._hook_cluster_connections(cluster)
            return cluster
        return aioredis.Redis.from_url(config.url, max_connections=config.max_connections,
                                       redis_connect_func=self._on_connect, **common)

    def _hook_cluster_connections(self, cluster: Any) -> None:
        """RedisCluster takes no connect hook; it passes its nodes' connection settings on from
        `nodes_manager.connection_kwargs` (startup nodes hold a copy), as redis-py itself does for
        its own per-connection handlers."""
        manager = getattr(cluster, "nodes_manager", None)
        shared = getattr(manager, "connection_kwargs", None)
        if not isinstance(shared, dict):
            log.warning("this redis-py cluster client has no nodes_manager.connection_kwargs: restarts of "
                        "cluster nodes will not be detected")
            return
        shared["redis_connect_func"] = self._on_connect
        for node in getattr(manager, "startup_nodes", {}).values():
            node.connection_kwargs["redis_connect_func"] = self._on_connect

    async def _on_connect(self, connection: Any) -> None:
        """A new connection: the usual handshake, then which server answered (its run_id)."""
        await connection.on_connect()
        try:
            await connection.send_command("INFO")
            info = await connection.read_response()
        except ResponseError as e:  # INFO refused (an ACL): restarts go unnoticed, nothing else changes
            log.debug("INFO refused on a new redis connection (%s); restarts will not be detected", e)
            return
        fields = _info_fields(info)
        run_id = fields.get("run_id")
        if not run_id:
            return
        node = getattr(connection, "path", None) or f"{connection.host}:{connection.port}"
        previous = self._run_ids.get(node)
        self._run_ids[node] = run_id
        if previous is None or previous == run_id:
            return
        self.restarts += 1
        persistent = fields.get("aof_enabled") == "1"
        log.warning("redis %s restarted (run_id %s -> %s, AOF %s)", node, previous[:8], run_id[:8],
                    "on" if persistent else "off: everything it held is gone")
        for listener in self.restart_listeners:
            listener(node, persistent)

    async def start(self) -> None:
        """Load the scripts now so the first requests need no NOSCRIPT round trip.
        A Redis that is down at start-up is not fatal: the breaker handles it."""
        try:
            for script in self._scripts.values():
                await asyncio.wait_for(self.client.script_load(script.script), self._deadline * 5)
        except _FAILURES as e:
            log.warning("redis not reachable at start-up (%r); limits and idempotency use their failure modes", e)

    async def ping(self) -> bool:
        """For readiness checks: one PING, bounded by the timeout, breaker-aware."""
        try:
            await self._call("ping", self.client.ping)
            return True
        except StoreUnavailable:
            return False

    async def call(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One client command (`fn`, e.g. `self.client.hget`) under the same timeout, breaker and
        stats as the store's own operations: for small features with their own keys (API keys)."""
        return await self._call(op, fn, *args, **kwargs)

    async def _call(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        stats = self.stats
        if not self.breaker.allow():
            stats.fast_failures += 1
            raise StoreUnavailable(f"redis unavailable (circuit open) during {op}")
        stats.round_trips += 1
        stats.by_operation[op] = stats.by_operation.get(op, 0) + 1
        try:
            async with asyncio.timeout(self._deadline):
                result = await fn(*args, **kwargs)
        except _FAILURES as e:
            stats.errors += 1
            self.breaker.record_failure(e)
            raise StoreUnavailable(f"redis {op} failed: {e!r}") from e
        except asyncio.CancelledError:
            self.breaker.record_abandoned()
            raise
        self.breaker.record_success()
        return result

    def _limit_args(self, checks: Sequence[LimitCheck], now: float | None) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        args: list[Any] = ["" if now is None else str(int(now * 1_000_000))]
        for c in checks:
            window_us = round(c.window * 1_000_000)
            unit = algorithms.time_unit_us(c.limit, window_us)
            keys.append(rate_limit_key(self.prefix, self.rl_tag, c.key))
            args += ("g" if c.algorithm == "gcra" else "s", c.limit, max(1, window_us // unit), unit,
                     c.cost, c.max_cost if c.max_cost is not None else c.cost)
        return keys, args

    @staticmethod
    def _limit_results(out: list[Any], n: int) -> list[LimitResult]:
        admitted = out[0] == 1
        return [LimitResult(admitted, out[i], out[i + 1], out[i + 2] / 1e6, out[i + 3] / 1e6)
                for i in range(2, 2 + 4 * n, 4)]

    @staticmethod
    def _reservation(out: list[Any], token: str) -> Reservation:
        state = out[0].decode()
        if state == "new":
            return Reservation(ReservationState.NEW, token=token, resumed=out[1] == 1)
        if state == "in_flight":
            return Reservation(ReservationState.IN_FLIGHT, retry_after=max(0, out[1]) / 1000)
        if state == "completed":
            return Reservation(ReservationState.COMPLETED, record=out[1])
        return Reservation(ReservationState.MISMATCH)

    async def rate_limit(self, checks: Sequence[LimitCheck], now: float | None = None) -> list[LimitResult]:
        keys, args = self._limit_args(checks, now)
        out = await self._limits(keys, args)
        return self._limit_results(out, len(checks))

    async def reserve(self, key: str, fingerprint: str, lock_ttl: float) -> Reservation:
        token = unique_hex()
        out = await self._call("reserve", self._scripts["idem_reserve"], keys=[idempotency_key(self.prefix, key)],
                               args=[fingerprint, token, _ms(lock_ttl)])
        return self._reservation(out, token)

    async def admit(self, checks: Sequence[LimitCheck], reserve: ReserveRequest,
                    now: float | None = None) -> Admission:
        if self.config.cluster:
            return await self._admit_concurrently(checks, reserve, now)
        keys, args = self._limit_args(checks, now)
        token = unique_hex()
        keys.append(idempotency_key(self.prefix, reserve.key))
        args += (reserve.fingerprint, token, _ms(reserve.lock_ttl))
        try:
            limits, reserved = await self._admissions(keys, args)
        except StoreUnavailable as e:
            return Admission(e, e)
        return Admission(self._limit_results(limits, len(checks)), self._reservation(reserved, token) if reserved else None)

    async def _admit_concurrently(self, checks: Sequence[LimitCheck], reserve: ReserveRequest,
                                  now: float | None) -> Admission:
        """Redis Cluster: the rate-limit keys and the record hash to different slots (usually
        different shards), which no one script may touch. Both go at once; a reservation the
        limits refused is released before the answer, so none survives a refused request."""
        limits, reserved = await asyncio.gather(self.rate_limit(checks, now),
                                                self.reserve(reserve.key, reserve.fingerprint, reserve.lock_ttl),
                                                return_exceptions=True)
        for part in (limits, reserved):
            if isinstance(part, BaseException) and not isinstance(part, StoreUnavailable):
                raise part
        if isinstance(limits, list) and not limits[0].allowed:
            await give_back(self, reserve, reserved)
            reserved = None
        return Admission(limits, reserved)  # type: ignore[arg-type]

    async def complete(self, key: str, fingerprint: str, record: bytes, retention: float,
                       token: str | None = None) -> bool:
        keys, args = [idempotency_key(self.prefix, key)], [fingerprint, token or "", record, _ms(retention)]
        return await self._completions(keys, args) == 1

    async def release(self, key: str, fingerprint: str, token: str | None = None,
                      keep_fingerprint: float | None = None) -> bool:
        keep = "" if keep_fingerprint is None else _ms(keep_fingerprint)
        out = await self._call("release", self._scripts["idem_release"], keys=[idempotency_key(self.prefix, key)],
                               args=[fingerprint, token or "", keep])
        return out == 1

    async def close(self) -> None:
        close = getattr(self.client, "aclose", None) or self.client.close
        await close()
