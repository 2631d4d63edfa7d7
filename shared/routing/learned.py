"""Learned routing statistics: each model's output/input token ratio and upstream latency.

Workers record one sample per successful, non-probe call, atomically in Redis (a Lua
script keeps the last N ratio samples per model and the last N latency samples per
(model, reasoning effort), and republishes the model's mean ratio once it has N
samples and the median latency once it has enough). Every process reads the two small
hashes into an immutable `RoutingStats` snapshot on a timer, so the router looks a
model up in O(1) and never waits on Redis. When Redis has lost the statistics
(restart, flush) the first process to notice rebuilds them from receipts in Postgres,
under a lock; until then the router uses its priors.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.db import TRANSIENT_DB_ERRORS
from shared.db.stats import recent_latencies, recent_ratios
from shared.db.types import Pool
from shared.logging import get_logger
from shared.queue.names import STATS_PREFIX
from shared.routing.candidates import RoutingStats, latency_key

log = get_logger(__name__)

PREFIX = STATS_PREFIX
RATIO_HASH = f"{PREFIX}:ratio"  # slug -> mean output/input ratio
LATENCY_HASH = f"{PREFIX}:latency"  # latency key (slug, or slug~effort) -> median upstream ms
READY_KEY = f"{PREFIX}:ready:2"  # present once the statistics were (re)built from Postgres, in this layout
REBUILD_LOCK = f"{PREFIX}:rebuild-lock"


# A refresh that fails for these keeps the last snapshot and tries again on the next tick.
_REFRESH_ERRORS: tuple[type[BaseException], ...] = (RedisError, *TRANSIENT_DB_ERRORS)


def ratios_key(slug: str) -> str:
    return f"{PREFIX}:ratios:{slug}"


def latencies_key(key: str) -> str:
    return f"{PREFIX}:latencies:{key}"


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """How many samples count: the ratio needs `size` of them, the latency median `latency_min`
    of the last `size` latencies."""

    size: int = 50
    latency_min: int = 20


# KEYS: ratio samples, latency samples, ratio hash, latency hash.
# ARGV: slug, latency key, ratio, latency ms ('' for none), window size, minimum latency samples.
_RECORD = """
local size = tonumber(ARGV[5])
redis.call('LPUSH', KEYS[1], ARGV[3])
redis.call('LTRIM', KEYS[1], 0, size - 1)
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local sum = 0
for _, item in ipairs(items) do sum = sum + tonumber(item) end
if #items >= size then
  redis.call('HSET', KEYS[3], ARGV[1], tostring(sum / #items))
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], 0, size - 1)
  local lats = {}
  for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do lats[#lats + 1] = tonumber(item) end
  if #lats >= tonumber(ARGV[6]) then
    table.sort(lats)
    local n = #lats
    local median = lats[math.floor((n + 1) / 2)]
    if n % 2 == 0 then median = (lats[n / 2] + lats[n / 2 + 1]) / 2 end
    redis.call('HSET', KEYS[4], ARGV[2], tostring(median))
  else
    redis.call('HDEL', KEYS[4], ARGV[2])
  end
end
return #items
"""


async def record_sample(
    redis: Redis, window: StatsWindow, slug: str, input_tokens: int, output_tokens: int, latency_ms: int | None,
    *, reasoning_effort: str | None = None,
) -> None:
    """Add one successful call's figures. Best effort: statistics never fail a finished job."""
    if input_tokens <= 0:
        return
    key = latency_key(slug, reasoning_effort)
    try:
        await redis.register_script(_RECORD)(  # local: redis-py hashes it, runs EVALSHA, loads on NOSCRIPT
            keys=[ratios_key(slug), latencies_key(key), RATIO_HASH, LATENCY_HASH],
            args=[slug, key, repr(output_tokens / input_tokens), "" if latency_ms is None else str(int(latency_ms)),
                  str(window.size), str(window.latency_min)],
        )
    except (RedisError, OSError) as e:
        log.warning("stats_record_failed", slug=slug, error=type(e).__name__)


def mean_ratio(samples: Sequence[tuple[int, int]], window: StatsWindow) -> float | None:
    """Mean output/input ratio of the newest `size` (input, output) samples, as the Lua script computes it."""
    recent = list(samples)[: window.size]
    return sum(o / i for i, o in recent) / len(recent) if len(recent) >= window.size else None


def median_latency(latencies: Sequence[int], window: StatsWindow) -> float | None:
    """Median of the newest `size` latencies, once there are `latency_min` of them."""
    recent = [float(v) for v in list(latencies)[: window.size]]
    return statistics.median(recent) if len(recent) >= window.latency_min else None


class LearnedStats:
    """A process's view of the statistics: refreshed on a timer, rebuilt when Redis lost them."""

    def __init__(self, redis: Redis, db: Pool, window: StatsWindow, *, refresh_s: float,
                 slugs: Callable[[], Iterable[str]]) -> None:
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
                ratios = await recent_ratios(conn, slugs, self._window.size)
                latencies = await recent_latencies(conn, slugs, self._window.size)
            async with self._redis.pipeline(transaction=True) as pipe:
                stale = [k for pattern in (ratios_key("*"), latencies_key("*"), f"{PREFIX}:samples:*")
                         async for k in self._redis.scan_iter(match=pattern, count=1000)]  # samples: the old layout
                pipe.delete(RATIO_HASH, LATENCY_HASH, *stale)
                for slug, samples in ratios.items():
                    pipe.rpush(ratios_key(slug), *(repr(o / i) for i, o in samples))
                    ratio = mean_ratio(samples, self._window)
                    if ratio is not None:
                        pipe.hset(RATIO_HASH, slug, repr(ratio))
                for (slug, effort), values in latencies.items():
                    key = latency_key(slug, effort)
                    pipe.rpush(latencies_key(key), *(str(v) for v in values))
                    latency = median_latency(values, self._window)
                    if latency is not None:
                        pipe.hset(LATENCY_HASH, key, repr(latency))
                pipe.set(READY_KEY, b"1")
                await pipe.execute()
            log.info("stats_rebuilt", models=len(ratios), latency_keys=len(latencies))
            return True
        finally:
            await self._redis.delete(REBUILD_LOCK)
