"""Requests and tokens per minute, for a tenant and for each of its API keys, checked and taken in
one Redis script per request, so every gateway (and the batch supervisor) shares one allowance.

The algorithm is GCRA (a token bucket kept as one "theoretical arrival time" per limit) on Redis's
own clock: a limit of N per minute refills continuously at N/60 a second and holds at most N. A
request is admitted only if every limit that applies has room for it, and then takes from all of
them; a refused request takes nothing. Interactive calls (`admit`) and batch lines (`take_batch`)
use separate buckets, so a batch never eats the interactive allowance. See docs/decisions.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from redis.asyncio import Redis

from shared.routing.limits import RateLimits

WINDOW_S = 60
WINDOW_US = WINDOW_S * 1_000_000
KEY_PREFIX = "ainfera:rl"
# Counted for a request's output when it sets neither max_tokens nor max_completion_tokens.
DEFAULT_OUTPUT_TOKENS = 1024


class Scope(StrEnum):
    TENANT = "tenant"
    KEY = "key"


class Unit(StrEnum):
    REQUESTS = "requests"
    TOKENS = "tokens"


class Lane(StrEnum):
    INTERACTIVE = "interactive"
    BATCH = "batch"


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit that applies to a request: whose, of what, how many a minute, and its Redis key."""

    scope: Scope
    unit: Unit
    per_minute: int
    owner_id: UUID
    lane: Lane = Lane.INTERACTIVE
    tenant_id: UUID | None = None  # the tenant it belongs to (a key's limit: its tenant); None: the owner

    @property
    def redis_key(self) -> str:
        """The bucket's key. Its hash tag is the tenant, so every limit one call is checked against
        (the tenant's and its key's) lives in one Redis Cluster slot and one script can take them all."""
        tag = self.tenant_id or self.owner_id
        return f"{KEY_PREFIX}:{{{tag}}}:{self.lane}:{self.scope}:{self.owner_id}:{self.unit}"


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: Limit
    remaining: int  # what is left after this request (before it, for a refused one)
    reset_s: float  # until the limit is whole again


@dataclass(frozen=True, slots=True)
class Admission:
    states: tuple[LimitState, ...]
    refused: Limit | None = None  # the first limit without room; None when admitted
    retry_after_s: float = 0.0  # when the refused request would fit
    requested: int = 0  # what the refused limit was asked for

    @property
    def admitted(self) -> bool:
        return self.refused is None


def limits_for(tenant_id: UUID, tenant: RateLimits, key_id: UUID | None, key: RateLimits,
               lane: Lane = Lane.INTERACTIVE) -> list[Limit]:
    """The limits a call in `lane` is held to (none at all: no Redis round trip)."""
    found: list[Limit] = []
    for scope, owner, limits in ((Scope.TENANT, tenant_id, tenant), (Scope.KEY, key_id, key)):
        if owner is None:
            continue
        if lane is Lane.INTERACTIVE:
            rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        else:
            rpm, tpm = limits.batch_requests_per_minute, limits.batch_tokens_per_minute
        if rpm:
            found.append(Limit(scope, Unit.REQUESTS, rpm, owner, lane, tenant_id))
        if tpm:
            found.append(Limit(scope, Unit.TOKENS, tpm, owner, lane, tenant_id))
    return found


def estimated_tokens(input_tokens: int, output_cap: int | None) -> int:
    """What a call counts against tokens per minute at admission: the input estimate plus the output cap
    it asked for (or `DEFAULT_OUTPUT_TOKENS`)."""
    return max(0, input_tokens) + (output_cap if output_cap is not None else DEFAULT_OUTPUT_TOKENS)


# KEYS: one per limit. ARGV: per limit, its per-minute limit and 1 if it counts tokens (0: requests);
# then how many requests (lines) to take, in order, and each one's tokens. Takes the longest prefix that
# fits every limit (a call is a prefix of one). Returns {taken, index of the limit that stopped it (0:
# none), when the next one would fit (us), then per limit: remaining, until whole again (us)}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = 60000000
local n = #KEYS
local wanted = tonumber(ARGV[2 * n + 1])
local tats, intervals, tokens = {}, {}, {}
for i = 1, n do
  intervals[i] = window / tonumber(ARGV[2 * i - 1])
  tokens[i] = ARGV[2 * i] == '1'
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  tats[i] = tat
end
local taken, refused, retry = 0, 0, 0
while taken < wanted do
  local line = tonumber(ARGV[2 * n + 2 + taken])
  for i = 1, n do
    local cost = 1
    if tokens[i] then cost = line end
    local after = tats[i] + cost * intervals[i] - now
    if after > window + 1 then
      refused, retry = i, math.ceil(after - window)
      break
    end
  end
  if refused > 0 then break end
  for i = 1, n do
    local cost = 1
    if tokens[i] then cost = line end
    tats[i] = tats[i] + cost * intervals[i]
  end
  taken = taken + 1
end
local out = {taken, refused, retry}
for i = 1, n do
  local used = tats[i] - now
  if taken > 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil(used / 1000) + 1000)
  end
  out[#out + 1] = math.max(0, math.floor((window - used) / intervals[i] + 1e-6))
  out[#out + 1] = math.ceil(used)
end
return out
"""


async def _run(redis: Redis, limits: Sequence[Limit], line_tokens: Sequence[int]) -> list[int]:
    args: list[int] = []
    for limit in limits:
        args += [limit.per_minute, 1 if limit.unit is Unit.TOKENS else 0]
    raw = await redis.register_script(_GCRA)(keys=[lim.redis_key for lim in limits],
                                             args=[*args, len(line_tokens), *line_tokens])
    return [int(v) for v in raw]


def _states(limits: Sequence[Limit], raw: Sequence[int]) -> tuple[LimitState, ...]:
    return tuple(LimitState(lim, raw[3 + 2 * i], raw[4 + 2 * i] / 1e6) for i, lim in enumerate(limits))


async def admit(redis: Redis, limits: Sequence[Limit], tokens: int) -> Admission:
    """Check one call against every limit and take 1 request and `tokens` tokens from each, or nothing.

    A call asking more tokens than a limit holds at all is refused without a round trip (it could never
    fit; `retry_after_s` is then 0)."""
    for lim in limits:
        if lim.unit is Unit.TOKENS and tokens > lim.per_minute:
            full = tuple(LimitState(x, x.per_minute, 0.0) for x in limits)
            return Admission(full, refused=lim, requested=tokens)
    raw = await _run(redis, limits, [tokens])
    refused = limits[raw[1] - 1] if raw[1] else None
    requested = (tokens if refused.unit is Unit.TOKENS else 1) if refused is not None else 0
    return Admission(_states(limits, raw), refused=refused, retry_after_s=raw[2] / 1e6, requested=requested)


async def take_batch(redis: Redis, limits: Sequence[Limit], line_tokens: Sequence[int]) -> int:
    """How many of these batch lines (their estimated tokens, in order) may be released now: the longest
    run that fits the batch limits, taken from them. 0 means wait; a line is never refused for good (one
    larger than a tokens limit counts as the whole limit)."""
    if not limits or not line_tokens:
        return len(line_tokens)
    cap = min((lim.per_minute for lim in limits if lim.unit is Unit.TOKENS), default=None)
    costs = [min(t, cap) for t in line_tokens] if cap is not None else list(line_tokens)
    raw = await _run(redis, limits, costs)
    return raw[0]


def duration(seconds: float) -> str:
    """A wait in OpenAI's `x-ratelimit-reset-*` format (Go's duration): "0s", "120ms", "1.5s", "6m0s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
