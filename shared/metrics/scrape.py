"""Gauges of shared state, read when the gateway is scraped: each queue's depth and oldest job
(Redis, one pipelined round trip), the lines of recent batches and the last fanout run (Postgres,
one query). Every gateway reports the same values; dashboards take `max`.

Bounded and cheap: four queues, one query over open and recent batches, a time limit on both;
a source that does not answer in time keeps its last values and counts `ainfera_scrape_errors`.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.db import TRANSIENT_DB_ERRORS
from shared.db.metrics import scrape_state
from shared.db.types import Pool
from shared.logging import get_logger
from shared.metrics.registry import Metrics
from shared.queue.names import QueueName

log = get_logger(__name__)

SCRAPE_TIMEOUT_S = 2.0
_SOURCE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, RedisError, *TRANSIENT_DB_ERRORS)


def queue_label(queue: str) -> str:
    """`ainfera:queue:interactive` -> `interactive`: the label of a queue."""
    return queue.rsplit(":", 1)[-1]


async def refresh_queues(metrics: Metrics, redis: Redis) -> None:
    """Depth and age of the oldest due job of every queue. arq keeps a job in its queue's sorted
    set (score: when it is due, in ms) until it finishes, so running jobs count too."""
    async with redis.pipeline(transaction=False) as pipe:
        for queue in QueueName:
            pipe.zcard(str(queue))
            pipe.zrange(str(queue), 0, 0, withscores=True)
        replies = await pipe.execute()
    now_ms = time.time() * 1000
    for i, queue in enumerate(QueueName):
        depth, oldest = replies[2 * i], replies[2 * i + 1]
        label = queue_label(queue)
        metrics.queue_depth.labels(label).set(depth)
        due_ms = oldest[0][1] if oldest else now_ms
        metrics.queue_oldest_age.labels(label).set(max(0.0, (now_ms - due_ms) / 1000))


async def refresh_database(metrics: Metrics, db: Pool) -> None:
    async with db.acquire(timeout=SCRAPE_TIMEOUT_S) as conn:
        state = await scrape_state(conn)
    for line_state, lines in state.batch_lines.items():
        metrics.batch_lines.labels(line_state).set(lines)
    if state.fanout_last_run is not None:
        for outcome, probes in state.fanout_last_run.items():
            metrics.fanout_last_run.labels(outcome).set(probes)


async def refresh_shared_state(metrics: Metrics, redis: Redis, db: Pool) -> None:
    """Refresh the scrape-time gauges; a source that fails or is slow is skipped and counted."""
    for source, work in (("redis", refresh_queues(metrics, redis)), ("postgres", refresh_database(metrics, db))):
        try:
            await asyncio.wait_for(work, timeout=SCRAPE_TIMEOUT_S)
        except _SOURCE_ERRORS as e:
            metrics.scrape_errors.labels(source).inc()
            log.warning("metrics_scrape_source_failed", source=source, error=type(e).__name__)
