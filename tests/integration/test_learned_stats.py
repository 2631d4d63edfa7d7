"""Learned statistics on real Redis and Postgres: the Lua script keeps the window the pure
model describes, one tenant's flood and its max_tokens-cut calls do not bend the figure, and a
rebuild from receipts gives what the live script gave."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

import pytest

from shared.chat.request import validate_chat_request
from shared.dispatch import run_dispatch
from shared.ids import job_id
from shared.jobs import DispatchJob, JobKind
from shared.resources import open_resources
from shared.routing.learned import (
    LATENCY_HASH,
    RATIO_HASH,
    READY_KEY,
    Sample,
    SampleBuffer,
    StatsWindow,
    ratios_key,
    record_sample,
    sample_of,
    window_median,
)
from tests.harness import new_tenant

pytestmark = pytest.mark.integration

SLUG = "gpt-oss-20b@groq"


def _job(tenant_id: str, text: str, **extra) -> DispatchJob:
    from datetime import UTC, datetime

    request = {"model": SLUG, "messages": [{"role": "user", "content": text}], **extra}
    return DispatchJob(job_id=job_id(), tenant_id=UUID(tenant_id), kind=JobKind.SYNC, submitted_at=datetime.now(UTC),
                       request=validate_chat_request(request))


async def test_the_script_keeps_the_window_the_model_describes(redis_flushed):
    window = StatsWindow(size=12, tenant_share=3, min_samples=7)
    rng = random.Random(7)
    history: list[tuple[str, float]] = []  # newest first, as the window reads it
    for _ in range(300):
        tenant = rng.choice(["t1", "t2", "t3", "t4", "attacker", "attacker", "attacker"])
        inp, out = rng.randint(1, 5000), rng.randint(0, 3000)
        await record_sample(redis_flushed, window, SLUG, inp, out, rng.randint(50, 900), tenant=tenant)
        history.insert(0, (tenant, out / inp))
        published = await redis_flushed.hget(RATIO_HASH, SLUG)
        expected = window_median(history, window)
        assert (published is None) == (expected is None)
        if expected is not None:
            assert float(published) == pytest.approx(expected, rel=1e-12)
    assert await redis_flushed.llen(ratios_key(SLUG)) == window.size


async def test_a_cut_answer_is_not_learned(redis_flushed):
    window = StatsWindow(size=3, tenant_share=3, min_samples=1)
    await record_sample(redis_flushed, window, SLUG, 4000, 1, 100, tenant="t", output_cap=1)
    assert not await redis_flushed.exists(ratios_key(SLUG))
    await record_sample(redis_flushed, window, SLUG, 4000, 200, 100, tenant="t", output_cap=1000)
    assert float(await redis_flushed.hget(RATIO_HASH, SLUG)) == 0.05


async def test_one_tenants_flood_does_not_bend_the_ratio_others_see_and_a_rebuild_agrees(settings, sim, redis_flushed):
    small = settings.model_copy(update={"stats_window": 12, "stats_tenant_share": 3, "stats_min_samples": 7})
    honest = [(await new_tenant(small))[0] for _ in range(3)]
    attacker, _ = await new_tenant(small)
    long_prompt = "Reply with one word. " + "filler " * 3000
    async with open_resources(small) as res:
        for i in range(3):
            for t in honest:
                await run_dispatch(res, _job(t, f"Summarise the plot of Hamlet in two sentences. {i}"))
        fair = (await res.stats.refresh()).output_ratios[SLUG]
        for i in range(20):  # huge prompts answered in one token: cut by the caller, not learned
            outcome = await run_dispatch(res, _job(attacker, f"{long_prompt} {i}", max_tokens=1))
            assert outcome is not None and outcome.http_status == 200
        assert (await res.stats.refresh()).output_ratios[SLUG] == fair
        for i in range(20):  # natural answers: only its newest three of the twelve places count
            await run_dispatch(res, _job(attacker, f"{long_prompt} {i}", max_tokens=4000))
        bent = (await res.stats.refresh()).output_ratios[SLUG]
        others = sorted(float(v.split()[1]) for v in await res.redis.lrange(ratios_key(SLUG), 0, -1)
                        if v.split()[0].decode() != attacker)
        assert len(others) == 9 and others[0] <= bent <= others[-1]

        latency = (await res.stats.refresh()).latency_ms[SLUG]
        await redis_flushed.delete(READY_KEY, RATIO_HASH, LATENCY_HASH)
        rebuilt = await res.stats.refresh()
        assert rebuilt.output_ratios[SLUG] == pytest.approx(bent)
        # The same latency again (a fast simulator may answer within a millisecond: 0 is a value).
        assert rebuilt.latency_ms[SLUG] == pytest.approx(latency)


async def test_a_worker_s_samples_are_written_in_batches_and_none_is_lost(redis_flushed):
    window = StatsWindow(size=50, tenant_share=50, min_samples=3)
    buffer = SampleBuffer(redis_flushed, flush_s=0.2, max_batch=5)

    def sample(i: int) -> Sample:
        made = sample_of(window, SLUG, input_tokens=100, output_tokens=10 + i, latency_ms=100, tenant="t")
        assert made is not None
        return made

    for i in range(3):
        buffer.add(sample(i))
    assert await redis_flushed.llen(ratios_key(SLUG)) == 0  # waiting for the flush time
    await asyncio.sleep(0.4)
    assert await redis_flushed.llen(ratios_key(SLUG)) == 3  # written together when it came
    for i in range(3, 8):
        buffer.add(sample(i))  # the fifth waiting one fills the batch: written without waiting
    await asyncio.sleep(0.05)
    assert await redis_flushed.llen(ratios_key(SLUG)) == 8
    buffer.add(sample(8))
    await buffer.flush()  # what a stopping process does
    assert await redis_flushed.llen(ratios_key(SLUG)) == 9
    assert float(await redis_flushed.hget(RATIO_HASH, SLUG)) == pytest.approx(0.14)  # median of 0.10..0.18
    assert sample_of(window, SLUG, input_tokens=0, output_tokens=5, latency_ms=1, tenant="t") is None
