"""Learned routing statistics: each model's output/input token ratio and upstream latency.

Workers record one sample per successful, non-probe call, atomically in Redis (a Lua
script keeps a window of the last N ratio samples per model and of the last N latency
samples per (model, reasoning effort), each tenant holding at most `tenant_share` of a
window, and republishes the window's median once it holds `min_samples`). A call cut off
by the caller's own max_tokens teaches nothing and is not recorded. Every process reads the
two small hashes into an immutable `RoutingStats` snapshot on a timer, so the router looks a
model up in O(1) and never waits on Redis. When Redis has lost the statistics (restart,
flush) the first process to notice rebuilds them from receipts in Postgres, under a lock;
until then the router uses its priors.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.db import TRANSIENT_DB_ERRORS
from shared.db.stats import recent_latencies, recent_ratios
from shared.db.types import Pool
from shared.logging import get_logger
from shared.queue.names import STATS_OLD_PREFIX, STATS_PREFIX
from shared.queue.pool import queue_redis
from shared.routing.candidates import RoutingStats, latency_key

log = get_logger(__name__)

PREFIX = STATS_PREFIX
RATIO_HASH = f"{PREFIX}:ratio"  # slug -> median output/input ratio
LATENCY_HASH = f"{PREFIX}:latency"  # latency key (slug, or slug~effort) -> median upstream ms
READY_KEY = f"{PREFIX}:ready:3"  # present once the statistics were (re)built from Postgres, in this layout
REBUILD_LOCK = f"{PREFIX}:rebuild-lock"


# A refresh that fails for these keeps the last snapshot and tries again on the next tick.
_REFRESH_ERRORS: tuple[type[BaseException], ...] = (RedisError, *TRANSIENT_DB_ERRORS)


def ratios_key(slug: str) -> str:
    return f"{PREFIX}:ratios:{slug}"


def latencies_key(key: str) -> str:
    return f"{PREFIX}:latencies:{key}"


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """Which samples count: the newest `size`, at most `tenant_share` of them from any one tenant
    (its newest); a median is published once the window holds `min_samples`. With
    min_samples > 2 x tenant_share no tenant is ever half of a published window."""

    size: int = 50
    tenant_share: int = 10
    min_samples: int = 21


# KEYS: ratio window, latency window, ratio hash, latency hash.
# ARGV: slug, latency key, tenant, ratio, latency ms ('' for none), window size, tenant share, min samples.
# A window is a list of "<tenant> <value>", newest first.
_RECORD = """
local size, share, need = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local own = ARGV[3] .. ' '
local function push(key, value)
  local mine = {}
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.sub(item, 1, #own) == own then mine[#mine + 1] = item end
  end
  for i = #mine, share, -1 do redis.call('LREM', key, -1, mine[i]) end
  redis.call('LPUSH', key, own .. value)
  redis.call('LTRIM', key, 0, size - 1)
  local values = {}
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    values[#values + 1] = tonumber(string.match(item, '(%S+)$'))
  end
  if #values < need then return nil end
  table.sort(values)
  local n = #values
  if n % 2 == 1 then return values[(n + 1) / 2] end
  return (values[n / 2] + values[n / 2 + 1]) / 2
end
local ratio = push(KEYS[1], ARGV[4])
if ratio then redis.call('HSET', KEYS[3], ARGV[1], tostring(ratio)) else redis.call('HDEL', KEYS[3], ARGV[1]) end
if ARGV[5] ~= '' then
  local latency = push(KEYS[2], ARGV[5])
  if latency then redis.call('HSET', KEYS[4], ARGV[2], tostring(latency)) else redis.call('HDEL', KEYS[4], ARGV[2]) end
end
return 1
"""


def cut_by_caller(output_tokens: int, output_cap: int | None) -> bool:
    """The caller's own max_tokens ended the answer (finish_reason "length"): its length says
    nothing about the model's natural one. Receipts keep no finish_reason, so this is the rule
    the rebuild from Postgres can apply too."""
    return output_cap is not None and output_tokens >= output_cap


@dataclass(frozen=True, slots=True)
class Sample:
    """One successful call's figures, as the recording script takes them."""

    keys: tuple[str, ...]
    args: tuple[str, ...]


def sample_of(window: StatsWindow, slug: str, input_tokens: int, output_tokens: int, latency_ms: int | None,
              *, tenant: str, reasoning_effort: str | None = None, output_cap: int | None = None) -> Sample | None:
    """The sample a call gives, as `tenant`'s; None when it teaches nothing (no input, or cut by the caller)."""
    if input_tokens <= 0 or cut_by_caller(output_tokens, output_cap):
        return None
    key = latency_key(slug, reasoning_effort)
    return Sample(keys=(ratios_key(slug), latencies_key(key), RATIO_HASH, LATENCY_HASH),
                  args=(slug, key, tenant, repr(output_tokens / input_tokens),
                        "" if latency_ms is None else str(int(latency_ms)),
                        str(window.size), str(window.tenant_share), str(window.min_samples)))


async def record_sample(
    redis: Redis, window: StatsWindow, slug: str, input_tokens: int, output_tokens: int, latency_ms: int | None,
    *, tenant: str, reasoning_effort: str | None = None, output_cap: int | None = None,
) -> None:
    """Add one successful call's figures at once. Best effort: statistics never fail a finished job.
    Workers add theirs through `LearnedStats.record`, which writes them in batches."""
    sample = sample_of(window, slug, input_tokens, output_tokens, latency_ms, tenant=tenant,
                       reasoning_effort=reasoning_effort, output_cap=output_cap)
    if sample is not None:
        await write_samples(redis, [sample])


async def write_samples(redis: Redis, samples: Sequence[Sample]) -> None:
    """Run the recording script for each sample, in order, in one pipeline (every key is in the
    `{stats}` slot, so on a cluster it goes to one master). Best effort: errors are logged."""
    if not samples:
        return
    node = queue_redis(redis, PREFIX)
    script = node.register_script(_RECORD)  # local: redis-py hashes it; the pipeline loads it if needed
    try:
        if len(samples) == 1:
            await script(keys=list(samples[0].keys), args=list(samples[0].args))
            return
        async with node.pipeline(transaction=False) as pipe:
            for sample in samples:
                await script(keys=list(sample.keys), args=list(sample.args), client=pipe)
            await pipe.execute()
    except (RedisError, OSError) as e:
        log.warning("stats_record_failed", samples=len(samples), error=type(e).__name__)


class SampleBuffer:
    """Samples of finished calls, written together: one pipeline per `flush_s` (or as soon as
    `max_batch` are waiting) rather than one script call per job. A sample reaches the published
    medians at most `flush_s` later; one still buffered when the process dies is lost, which a
    rebuild from the receipts repairs (statistics are best effort by design)."""

    def __init__(self, redis: Redis, *, flush_s: float = 0.05, max_batch: int = 64) -> None:
        self._redis, self._flush_s, self._max_batch = redis, flush_s, max_batch
        self._pending: list[Sample] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def add(self, sample: Sample) -> None:
        self._pending.append(sample)
        if len(self._pending) >= self._max_batch:
            self._write_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_s, self._write_now)

    def _write_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(write_samples(self._redis, batch), name="learned-stats-write")
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Write what is waiting and wait for every write under way."""
        self._write_now()
        if self._writes:
            await asyncio.wait(set(self._writes))


def window_of(samples: Iterable[tuple[str, float]], window: StatsWindow) -> list[tuple[str, float]]:
    """What a window keeps of (tenant, value) samples given newest first, in that order: each
    tenant's newest `tenant_share`, then the newest `size` of those (what the Lua script's evictions leave)."""
    kept: list[tuple[str, float]] = []
    per_tenant: Counter[str] = Counter()
    for tenant, value in samples:
        if len(kept) >= window.size:
            break
        if per_tenant[tenant] < window.tenant_share:
            per_tenant[tenant] += 1
            kept.append((tenant, value))
    return kept


def window_median(samples: Iterable[tuple[str, float]], window: StatsWindow) -> float | None:
    """The published figure: the median of the window, once it holds `min_samples`."""
    values = [v for _, v in window_of(samples, window)]
    return statistics.median(values) if len(values) >= window.min_samples else None


def ratio_samples(samples: Sequence[tuple[str, int, int]]) -> list[tuple[str, float]]:
    """(tenant, input, output) receipts as (tenant, ratio) samples."""
    return [(tenant, o / i) for tenant, i, o in samples]


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
        self._samples = SampleBuffer(redis)

    def record(self, slug: str, input_tokens: int, output_tokens: int, latency_ms: int | None, *, tenant: str,
               reasoning_effort: str | None = None, output_cap: int | None = None) -> None:
        """Add a successful call's figures (written with others within `SampleBuffer`'s flush time)."""
        sample = sample_of(self._window, slug, input_tokens, output_tokens, latency_ms, tenant=tenant,
                           reasoning_effort=reasoning_effort, output_cap=output_cap)
        if sample is not None:
            self._samples.add(sample)

    async def flush(self) -> None:
        """Write the samples still waiting (tests and shutdown)."""
        await self._samples.flush()

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
        await self._samples.flush()
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
        """Read the published figures, after writing this process's own waiting samples."""
        await self._samples.flush()
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
                ratios = await recent_ratios(conn, slugs, self._window.size, self._window.tenant_share)
                latencies = await recent_latencies(conn, slugs, self._window.size, self._window.tenant_share)
            # One transaction over keys of one slot: on a Redis Cluster it goes to the master that
            # holds `{stats}`, which also holds every key the scan can find (the older layout, in
            # other slots, never existed on a cluster).
            node = queue_redis(self._redis, PREFIX)
            patterns = (ratios_key("*"), latencies_key("*")) + (() if node is not self._redis
                                                                else (f"{STATS_OLD_PREFIX}:*",))
            async with node.pipeline(transaction=True) as pipe:
                stale = [k for pattern in patterns async for k in node.scan_iter(match=pattern, count=1000)]
                pipe.delete(RATIO_HASH, LATENCY_HASH, *stale)
                for slug, rows in ratios.items():
                    samples = window_of(ratio_samples(rows), self._window)
                    pipe.rpush(ratios_key(slug), *(f"{t} {v!r}" for t, v in samples))
                    ratio = window_median(samples, self._window)
                    if ratio is not None:
                        pipe.hset(RATIO_HASH, slug, repr(ratio))
                for (slug, effort), values in latencies.items():
                    key = latency_key(slug, effort)
                    kept = window_of([(t, float(v)) for t, v in values], self._window)
                    pipe.rpush(latencies_key(key), *(f"{t} {int(v)}" for t, v in kept))
                    latency = window_median(kept, self._window)
                    if latency is not None:
                        pipe.hset(LATENCY_HASH, key, repr(latency))
                pipe.set(READY_KEY, b"1")
                await pipe.execute()
            log.info("stats_rebuilt", models=len(ratios), latency_keys=len(latencies))
            return True
        finally:
            await self._redis.delete(REBUILD_LOCK)
