"""Enqueue arq jobs in one round trip and wake idle workers; bulk enqueue through pipelines.

Jobs keep arq's layout (job key, queue score, expiry), so an unmodified arq Worker can run them.
The script runs through redis-py's script object, which loads it when Redis does not know it
(NOSCRIPT on a single call; SCRIPT EXISTS, then SCRIPT LOAD if needed, before a pipeline).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import SerializationError, serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import Redis

from shared.queue.names import arq_id, running_key, wake_channel
from shared.queue.pool import database_of, queue_redis
from shared.queue.serializer import NotJSONSafeError, serialize_job_data

# What arq's ArqRedis.enqueue_job does with WATCH/MULTI (4-5 round trips), in one script,
# plus the wake-up. KEYS: job key, result key, queue (one hash tag: the job's arq id carries the
# queue's). ARGV: arq id, score, job ttl ms, serialized job, wake channel ('' = do not publish;
# bulk enqueue publishes once per chunk). The wake-up is sharded pub/sub (Redis 7): its channel is
# in the queue's slot, so on a cluster it goes to the node holding the queue and no further.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if ARGV[5] ~= '' then
  redis.call('SPUBLISH', ARGV[5], ARGV[1])
end
return 1
"""

DEFAULT_CHUNK_SIZE = 1000


def _script_call(
    queue_name: str,
    function: str,
    job_id: str,
    kwargs: Mapping[str, Any],
    *,
    now_ms: int,
    defer_ms: int,
    expires_ms: int | None,
    channel: str,
) -> tuple[list[str], list[str]]:
    """Keys and arguments of one enqueue, computed exactly as arq 0.28's enqueue_job does."""
    if not job_id:
        raise ValueError("job_id must be a non-empty string")
    try:
        job = serialize_job(function, (), dict(kwargs), None, now_ms, serializer=serialize_job_data)
    except SerializationError as exc:  # arq wraps our NotJSONSafeError in its own, less telling one
        cause = exc.__cause__ or exc
        raise NotJSONSafeError(f"job {job_id!r} ({function}): kwargs are not JSON-safe: {cause}") from cause
    score = now_ms + defer_ms
    ttl_ms = expires_ms or (score - now_ms + expires_extra_ms)
    queued_id = arq_id(queue_name, job_id)
    keys = [job_key_prefix + queued_id, result_key_prefix + queued_id, queue_name]
    args = [queued_id, str(score), str(ttl_ms), job.decode(), channel]
    return keys, args


def _ms(seconds: float | None) -> int | None:
    if seconds is None:
        return None
    if seconds < 0:
        raise ValueError("durations must not be negative")
    return round(seconds * 1000)


async def job_known(redis: Redis, queue_name: str, job_id: str) -> bool:
    """True while `queue_name` still holds the job: queued (its job key) or running (in the running set)."""
    queued_id = arq_id(queue_name, job_id)
    async with queue_redis(redis, queue_name).pipeline(transaction=False) as pipe:
        pipe.exists(job_key_prefix + queued_id)
        pipe.zscore(running_key(queue_name), queued_id)
        queued, running = await pipe.execute()
    return bool(queued) or running is not None


async def enqueue(
    redis: Redis,
    queue_name: str,
    function: str,
    *,
    job_id: str,
    kwargs: Mapping[str, Any],
    defer_s: float = 0,
    expires_s: float | None = None,
) -> bool:
    """Put one job on `queue_name` and wake that queue's idle workers, in one round trip.

    Returns False, changing nothing, when a job or a kept result with this id
    already exists (arq's uniqueness rule), so the job id is the idempotency key.
    `expires_s` (default: one day after the job is due) is when arq gives up on
    a job that has not started. Raises NotJSONSafeError before touching Redis
    when kwargs are not JSON-safe.
    """
    redis = queue_redis(redis, queue_name)
    keys, args = _script_call(
        queue_name,
        function,
        job_id,
        kwargs,
        now_ms=timestamp_ms(),
        defer_ms=_ms(defer_s) or 0,
        expires_ms=_ms(expires_s) or None,
        channel=wake_channel(queue_name, database_of(redis)),
    )
    # Registering is local (the source's SHA-1, no round trip), so it is done on the caller's client.
    return bool(await redis.register_script(_ENQUEUE)(keys=keys, args=args))


async def enqueue_many(
    redis: Redis,
    queue_name: str,
    function: str,
    jobs: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Enqueue (job_id, kwargs) pairs, one pipeline and one wake-up per chunk; returns how many were new.

    Ids that already exist are skipped, as `enqueue` does. Each chunk is
    serialized before it is sent, so a job that is not JSON-safe raises
    NotJSONSafeError with the chunks before it enqueued and nothing of its own
    chunk; enqueueing the same list again is safe.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    redis = queue_redis(redis, queue_name)
    channel = wake_channel(queue_name, database_of(redis))
    script = redis.register_script(_ENQUEUE)
    pending = iter(jobs)
    added = 0
    while chunk := list(islice(pending, chunk_size)):
        now_ms = timestamp_ms()
        calls = [
            _script_call(queue_name, function, job_id, kwargs, now_ms=now_ms, defer_ms=0, expires_ms=None, channel="")
            for job_id, kwargs in chunk
        ]
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await script(keys=keys, args=args, client=pipe)  # queued: the pipeline loads it first if needed
            pipe.spublish(channel, "")
            results = await pipe.execute()
        added += sum(int(r) for r in results[:-1])
    return added
