"""Facts about a Redis client the queue needs (which database it talks to)."""

from __future__ import annotations

from redis.asyncio import Redis


def database_of(redis: Redis) -> int:
    """The database number a client talks to (0 when its pool does not say)."""
    return int(redis.connection_pool.connection_kwargs.get("db", 0))
