"""A latency budget on the seeded catalog, in a simulated world where each model answers in its
catalog profile: the router keeps to the budget with priors only and after 200 calls have taught
it each model's latency, and a low reasoning effort it chooses reaches the provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from redis.asyncio import Redis

from shared.chat.request import validate_chat_request
from shared.dispatch import run_dispatch
from shared.ids import job_id
from shared.jobs import DispatchJob, JobKind
from shared.resources import Resources, open_resources
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy
from shared.settings import Settings
from shared.simulator.knowledge import CATALOG_FILE
from tests.harness import make_settings, new_tenant, running_gateway, running_worker
from tests.integration.conftest import REDIS_DB
from tests.integration.simulator_server import running_simulator

pytestmark = pytest.mark.integration

SCALE = 0.001  # a 195-s reasoning call answers in 195 ms
SHORT = [{"role": "user", "content": "What is the capital of France?"}]
ROWS = {m["slug"]: m for m in json.loads(CATALOG_FILE.read_text(encoding="utf-8"))["models"]}
# 200 calls: 20 each (the latency median needs 20 samples), fast tier and frontier alike.
TRAFFIC = [
    ("gpt-5.6-sol@openai", None), ("gpt-5.6-sol@openai", "low"), ("minimax-m2.7@sambanova", None),
    ("gpt-oss-120b@groq", None), ("gpt-oss-120b@cerebras", None), ("llama-3.3-70b@groq", None),
    ("claude-opus-4.8@anthropic", None), ("deepseek-v4-pro@deepseek", None), ("qwen3.7-max@alibaba", None),
    ("gemini-3.5-flash@google", None),
]


@pytest.fixture(scope="module")
def profile_sim_url() -> AsyncIterator[str]:
    with running_simulator(latency_ms=None, time_scale=SCALE) as url:
        yield url


@pytest.fixture
def world(database_url: str, redis_flushed: Redis, profile_sim_url: str) -> Settings:
    settings = make_settings(database_url, REDIS_DB, upstream_override=profile_sim_url)  # the worker needs no scale
    return settings.model_copy(update={"stats_tenant_share": 20, "stats_min_samples": 20})  # one tenant plays all


def job(tenant_id: str, slug: str, effort: str | None, i: int) -> DispatchJob:
    request = {"model": slug, "messages": [{"role": "user", "content": f"Name a river, please ({i})."}]}
    if effort:
        request["reasoning_effort"] = effort
    return DispatchJob(job_id=job_id(), tenant_id=UUID(tenant_id), kind=JobKind.SYNC,
                       request=validate_chat_request(request), submitted_at=datetime.now(UTC))


def plan(res: Resources, budget_ms: float):
    request = {"model": "ainfera-auto", "messages": SHORT, "routing_hint": {"latency_budget_ms": budget_ms}}
    return plan_request(validate_chat_request(request), res.catalog.current, policy=TenantPolicy(),
                        stats=res.stats.current, settings=res.settings)


def world_ms(slug: str, effort: str | None, output_tokens: int) -> float:
    row = ROWS[slug]
    figures = row["aa_fast_variant"] if effort else row
    ttft = figures["p50_ttft_ms"] if figures.get("p50_ttft_ms") is not None else (
        200.0 if slug.split("@")[1] in ("groq", "cerebras", "sambanova") else 1000.0)
    speed = figures.get("output_tokens_per_s") or row.get("output_tokens_per_s") or 50.0
    return ttft + output_tokens * 1000 / speed


async def test_a_budget_keeps_to_the_fast_tier_with_priors_and_after_learning(world):
    tenant_id, _ = await new_tenant(world)
    async with open_resources(world) as res:
        before = plan(res, 500)
        assert before.chosen.provider.fast_tier and not before.chosen.latency_observed
        assert before.decision_log["latency_budget_met"] is True

        calls = [(slug, effort, i) for slug, effort in TRAFFIC for i in range(20)]
        outcomes = []
        for start in range(0, len(calls), 40):
            outcomes += await asyncio.gather(*(run_dispatch(res, job(tenant_id, s, e, i))
                                               for s, e, i in calls[start:start + 40]))
        assert [o.http_status for o in outcomes] == [200] * 200
        learned = (await res.stats.refresh()).latency_ms

        # Each learned median is the model's world time (the simulator's skipped time added back),
        # plus our own overhead at real scale; never the compressed time.
        for (slug, effort), o in zip(((s, e) for s, e, _ in calls[::20]), outcomes[::20], strict=True):
            key = slug if effort is None else f"{slug}~{effort}"
            expected = world_ms(slug, effort, o.body["usage"]["completion_tokens"])
            assert expected * 0.9 < learned[key] < expected * 1.1 + 250, (key, learned[key], expected)
        assert learned["gpt-5.6-sol@openai"] > 100_000 and learned["gpt-5.6-sol@openai~low"] < 5_000

        after = plan(res, 500)
        assert after.chosen.provider.fast_tier and after.chosen.expected_latency_ms <= 500
        assert all(c.expected_latency_ms <= 500 for c in after.candidates)
        frontier = plan(res, 3_000)
        assert (frontier.chosen.model.slug, frontier.chosen.reasoning_effort) == ("gpt-5.6-sol@openai", "low")
        assert frontier.chosen.latency_observed  # its low-effort latency was learned, not guessed
        note = next(s for s in frontier.decision_log["steps"] if s["step"] == "latency")["note"]
        assert "gpt-5.6-sol@openai at reasoning_effort low" in note and "more than 10 aa points below" in note


async def test_the_effort_ainfera_auto_chooses_is_sent_and_written_down(world):
    tenant_id, key = await new_tenant(world)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "ainfera-auto", "messages": SHORT, "routing_hint": {"latency_budget_ms": 3_000, "explain": True}}
    async with running_worker(world), running_gateway(world) as client:
        explained = (await client.post("/v1/routing/explain", json=body, headers=auth)).json()
        assert (explained["model"], explained["reasoning_effort"]) == ("gpt-5.6-sol@openai", "low")
        assert explained["decision_log"]["latency_budget_met"] is True
        r = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert r.status_code == 200, r.text
        meta = r.json()["ainfera"]
        assert r.json()["model"] == "gpt-5.6-sol@openai" and meta["reasoning_effort"] == "low"
        assert meta["decision_log"]["reasoning_effort"] == "low"
        receipt = (await client.get(f"/v1/receipts/{meta['receipt_id']}", headers=auth)).json()
        assert receipt["reasoning_effort"] == "low"
        # answered at the fast variant's pace (~2.2 s of world time), not the default's (~195 s)
        assert 2_000 < receipt["upstream_latency_ms"] < 4_000
        events = (await client.get(f"/v1/audit/{tenant_id}", headers=auth)).json()["events"]
        routed = events[-1]["payload"]
        assert routed["reasoning_effort"] == "low" and routed["reasoning_effort_source"] == "ainfera-auto"

        # the caller's own effort is sent as it is, and never replaced
        own = {**body, "reasoning_effort": "high"}
        r = await client.post("/v1/chat/completions", json=own, headers=auth)
        assert r.status_code == 200, r.text
        assert "reasoning_effort" not in r.json()["ainfera"]
        assert all("reasoning_effort" not in t for s in r.json()["ainfera"]["decision_log"]["steps"]
                   for t in s["top"])
