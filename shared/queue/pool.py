"""The Redis client of the queue: arq's ArqRedis with JSON serialization, from a redis:// URL.

Gateways enqueue and wait through it; WakingWorker builds its own from `redis_settings`.
"""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis

from shared.queue.serializer import deserialize, serialize


async def create_queue_pool(redis_url: str) -> ArqRedis:
    """Connect (with arq's connection retries) and return a client whose arq helpers speak JSON.

    Use it, not a bare `arq.create_pool`, wherever arq itself serializes
    (`ArqRedis.enqueue_job`, `Job.result`), so nothing on the queue is pickled.
    """
    return await create_pool(RedisSettings.from_dsn(redis_url), job_serializer=serialize, job_deserializer=deserialize)


def database_of(redis: Redis) -> int:
    """The database number a client talks to (0 when its pool does not say)."""
    return int(redis.connection_pool.connection_kwargs.get("db", 0))
