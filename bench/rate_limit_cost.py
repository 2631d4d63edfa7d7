"""What rate limits add to a call: the gateway's admission (`gateway/rate_limits.py`) timed in-process
against a real Redis, with no limit set (no round trip at all) and with a tenant's and a key's
requests and tokens limits (four buckets, one script call). The limits are high enough never to refuse.

    .venv/bin/python bench/rate_limit_cost.py [--redis redis://127.0.0.1:6379/14] [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.chat.request import validate_chat_request
from shared.rate_limits import KEY_PREFIX, admit, estimated_tokens, limits_for
from shared.routing.limits import RateLimits
from shared.routing.plan import route_request

BODY = {"model": "llama-3.3-70b@groq", "max_tokens": 200,
        "messages": [{"role": "user", "content": "Write one sentence about queues."}]}
HIGH = RateLimits(requests_per_minute=10_000_000, tokens_per_minute=10_000_000)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))]


async def admission(redis: Redis, limits: RateLimits, tenant: uuid.UUID, key: uuid.UUID) -> None:
    """What `check_rate_limits` does for one call."""
    req = validate_chat_request(BODY)
    found = limits_for(tenant, limits, key, limits)
    if found:
        tokens = estimated_tokens(route_request(req).input_tokens, req.output_cap)
        assert (await admit(redis, found, tokens)).admitted


async def timed(redis: Redis, limits: RateLimits, calls: int) -> tuple[float, float]:
    tenant, key = uuid.uuid4(), uuid.uuid4()
    for _ in range(200):  # warm: the script is loaded, connections are open
        await admission(redis, limits, tenant, key)
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await admission(redis, limits, tenant, key)
        samples.append((time.perf_counter() - t0) * 1000)
    return pct(samples, 50), pct(samples, 99)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    redis = Redis.from_url(args.redis)
    try:
        none = await timed(redis, RateLimits(), args.calls)
        limited = await timed(redis, HIGH, args.calls)
        print(f"no limits:                 p50 {none[0]:.3f} ms  p99 {none[1]:.3f} ms (validation only)")
        print(f"tenant + key RPM and TPM:  p50 {limited[0]:.3f} ms  p99 {limited[1]:.3f} ms")
        print(f"added by the limiter:      p50 {limited[0] - none[0]:.3f} ms  p99 {limited[1] - none[1]:.3f} ms")
        keys = [k async for k in redis.scan_iter(f"{KEY_PREFIX}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
