"""Claiming due jobs in one round trip: the Lua script and its typed result.

Running the claimed jobs stays arq's business (`Worker.run_job`); see `worker.py`. The script
runs through redis-py's script object (EVALSHA, loaded on NOSCRIPT).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from shared.queue.names import running_key

# Walks the due part of the queue (score <= now) in growing pages, skipping jobs in the queue's
# running set whose claim has not lapsed and adding the others to it (score: now + the in-progress
# ttl), until it holds `want` jobs or has looked at `scan_limit` entries. Unlike arq's fixed
# queue_read_limit window, it scans past the jobs other workers are running, so every free slot of
# every worker can be filled. Lapsed claims (a killed worker's) are dropped first, so their jobs
# are taken again. Both keys are declared and share the queue's hash tag: it runs on a Redis Cluster.
# KEYS: queue, running set. ARGV: now ms, want, in-progress ttl ms, scan limit.
# Returns {more ('1' when it stopped because it had enough), next due score or '', id, score, ...}.
_CLAIM = """
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local lapse = now + tonumber(ARGV[3])
local scan_limit = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local out = {'0', ''}
local got = 0
local offset = 0
local page = want + 16
while got < want and offset < scan_limit do
  local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, page)
  for i = 1, #entries, 2 do
    if redis.call('ZADD', KEYS[2], 'NX', lapse, entries[i]) == 1 then
      out[#out + 1] = entries[i]
      out[#out + 1] = entries[i + 1]
      got = got + 1
      if got == want then
        break
      end
    end
  end
  if #entries < page * 2 then
    break
  end
  offset = offset + page
  page = page * 2
end
if got == want then
  out[1] = '1'
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #nxt > 0 then
  out[2] = nxt[2]
end
return out
"""


@dataclass(frozen=True)
class Claim:
    """What one claim took and what it saw."""

    # (job id, queue score in ms) of each job now marked in progress for this worker.
    jobs: tuple[tuple[str, int], ...]
    # Score of the earliest job not yet due (deferred or retried), if any.
    next_due_ms: int | None
    # The claim stopped because it had as many jobs as asked for: more may be due.
    maybe_more: bool


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _score(raw: bytes | str) -> int:
    # Scores come back as Redis formats doubles; arq's scores are integral milliseconds.
    return int(float(raw))


async def claim_jobs(
    redis: Redis,
    queue_name: str,
    *,
    limit: int,
    in_progress_ms: int,
    now_ms: int,
    scan_limit: int,
) -> Claim:
    """Mark up to `limit` due jobs as in progress (the queue's running set, for `in_progress_ms`) and
    return their arq ids."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    # Registering is local (the source's SHA-1, no round trip), so it is done on the caller's client.
    raw = await redis.register_script(_CLAIM)(
        keys=[queue_name, running_key(queue_name)],
        args=[str(now_ms), str(limit), str(in_progress_ms), str(scan_limit)],
    )
    more, next_due, *flat = raw
    jobs = tuple((_text(job_id), _score(score)) for job_id, score in zip(flat[::2], flat[1::2], strict=True))
    return Claim(jobs=jobs, next_due_ms=_score(next_due) if next_due else None, maybe_more=_text(more) == "1")
