"""Learned routing statistics: each model's output/input token ratio and upstream latency.

Workers record one sample per successful, non-probe call, atomically in Redis (a Lua
script keeps the last N samples per model and republishes the model's mean ratio,
once it has N samples, and its median latency, once it has enough). Every process
reads the two small hashes into an immutable `RoutingStats` snapshot on a timer, so
the router looks a model up in O(1) and never waits on Redis. When Redis has lost the
statistics (restart, flush) the first process to notice rebuilds them from receipts
in Postgres, under a lock; until then the router uses its priors.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.db import TRANSIENT_DB_ERRORS
from shared.db.stats import recent_samples
from shared.logging import get_logger
from shared.lua import LuaScript
from shared.routing.router import RoutingStats

log = get_logger(__name__)

PREFIX = "ainfera:stats"
RATIO_HASH = f"{PREFIX}:ratio"
LATENCY_HASH = f"{PREFIX}:latency"
READY_KEY = f"{PREFIX}:ready"  # present once the statistics were (re)built from Postgres
REBUILD_LOCK = f"{PREFIX}:rebuild-lock"


# A refresh that fails for these keeps the last snapshot and tries again on the next tick.
_REFRESH_ERRORS: tuple[type[BaseException], ...] = (RedisError, *TRANSIENT_DB_ERRORS)


def samples_key(slug: str) -> str:
    return f"{PREFIX}:samples:{slug}"


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """How many samples count: the ratio needs `size` of them, the latency median `latency_min`."""

    size: int = 50
    latency_min: int = 20


# KEYS: samples list, ratio hash, latency hash. ARGV: slug, "ratio,latency_ms" (latency may be empty),
# window size, minimum latency samples.
_RECORD = LuaScript(
    """
local size = tonumber(ARGV[3])
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, size - 1)
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local sum, lats = 0, {}
for _, item in ipairs(items) do
  local comma = string.find(item, ',', 1, true)
  sum = sum + tonumber(string.sub(item, 1, comma - 1))
  local lat = string.sub(item, comma + 1)
  if lat ~= '' then lats[#lats + 1] = tonumber(lat) end
end
if #items >= size then
  redis.call('HSET', KEYS[2], ARGV[1], tostring(sum / #items))
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if #lats >= tonumber(ARGV[4]) then
  table.sort(lats)
  local n = #lats
  local median = lats[math.floor((n + 1) / 2)]
  if n % 2 == 0 then median = (lats[n / 2] + lats[n / 2 + 1]) / 2 end
  redis.call('HSET', KEYS[3], ARGV[1], tostring(median))
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return #items
"""
)


def _sample(input_tokens: int, output_tokens: int, latency_ms: int | None) -> str:
    return f"{output_tokens / input_tokens!r},{'' if latency_ms is None else int(latency_ms)}"


async def record_sample(
    redis: Redis, window: StatsWindow, slug: str, input_tokens: int, output_tokens: int, latency_ms: int | None
) -> None:
    """Add one successful call's figures. Best effort: statistics never fail a finished job."""
    if input_tokens <= 0:
        return
    try:
        await _RECORD.run(
            redis,
            [samples_key(slug), RATIO_HASH, LATENCY_HASH],
            [slug, _sample(input_tokens, output_tokens, latency_ms), str(window.size), str(window.latency_min)],
        )
    except (RedisError, OSError) as e:
        log.warning("stats_record_failed", slug=slug, error=type(e).__name__)


def summarise(samples: Sequence[tuple[int, int, int | None]], window: StatsWindow) -> tuple[float | None, float | None]:
    """(mean ratio, median latency) of newest-first samples, as the Lua script computes them."""
    recent = list(samples)[: window.size]
    ratio = sum(o / i for i, o, _ in recent) / len(recent) if len(recent) >= window.size else None
    lats = [float(lat) for _, _, lat in recent if lat is not None]
    latency = statistics.median(lats) if len(lats) >= window.latency_min else None
    return ratio, latency


class LearnedStats:
    """A process's view of the statistics: refreshed on a timer, rebuilt when Redis lost them."""

    def __init__(self, redis: Redis, db: Any, window: StatsWindow, *, refresh_s: float, slugs: Any) -> None:
        self._redis = redis
        self._db = db
        self._window = window
        self._refresh_s = refresh_s
        self._slugs = slugs  # callable returning the catalog's slugs (the catalog can change)
        self._snapshot = RoutingStats()
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> RoutingStats:
        return self._snapshot

    @property
    def window(self) -> StatsWindow:
        return self._window

    async def start(self) -> None:
        with contextlib.suppress(*_REFRESH_ERRORS):
            await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="learned-stats")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except _REFRESH_ERRORS as e:
                log.warning("stats_refresh_failed", error=type(e).__name__)

    async def refresh(self) -> RoutingStats:
        if not await self._redis.exists(READY_KEY):
            await self.rebuild()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(RATIO_HASH)
            pipe.hgetall(LATENCY_HASH)
            ratios, latencies = await pipe.execute()
        self._snapshot = RoutingStats(
            output_ratios={k.decode(): float(v) for k, v in ratios.items()},
            latency_ms={k.decode(): float(v) for k, v in latencies.items()},
        )
        return self._snapshot

    async def rebuild(self) -> bool:
        """Rewrite the statistics from Postgres receipts. False when another process holds the lock."""
        if not await self._redis.set(REBUILD_LOCK, b"1", nx=True, px=60_000):
            return False
        try:
            slugs = list(self._slugs())
            async with self._db.acquire() as conn:
                by_slug = await recent_samples(conn, slugs, self._window.size)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(RATIO_HASH, LATENCY_HASH, *(samples_key(s) for s in slugs))
                for slug, samples in by_slug.items():
                    pipe.rpush(samples_key(slug), *(_sample(i, o, lat) for i, o, lat in samples))
                    ratio, latency = summarise(samples, self._window)
                    if ratio is not None:
                        pipe.hset(RATIO_HASH, slug, repr(ratio))
                    if latency is not None:
                        pipe.hset(LATENCY_HASH, slug, repr(latency))
                pipe.set(READY_KEY, b"1")
                await pipe.execute()
            log.info("stats_rebuilt", models=len(by_slug))
            return True
        finally:
            await self._redis.delete(REBUILD_LOCK)
