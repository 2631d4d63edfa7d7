"""The simulated provider answers in each model's catalog latency profile, on a compressed clock,
and enforces the reasoning efforts each model accepts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.simulator.knowledge import CATALOG_FILE
from shared.simulator.profiles import SKIPPED_HEADER
from shared.simulator.server import create_app

CATALOG = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
ROWS = {m["slug"]: m for m in CATALOG["models"]}
SCALE = 1e-4
OPENAI = "/api.openai.com/v1/chat/completions"
GROQ = "/api.groq.com/openai/v1/chat/completions"
TOGETHER = "/api.together.ai/v1/chat/completions"
BEARER = {"Authorization": "Bearer sim-key"}


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(latency_ms=None, time_scale=SCALE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        yield client


async def world_ms(sim: httpx.AsyncClient, path: str, model: str, **extra: Any) -> tuple[float, int]:
    """(world milliseconds the answer stood for, completion tokens), read off the answer."""
    body = {"model": model, "messages": [{"role": "user", "content": "Name three rivers."}], **extra}
    r = await sim.post(path, json=body, headers=BEARER)
    assert r.status_code == 200, r.text
    skipped = float(r.headers[SKIPPED_HEADER])
    return skipped / (1 - SCALE), r.json()["usage"]["completion_tokens"]


async def test_a_reasoning_model_answers_in_its_catalog_time(sim):
    row = ROWS["gpt-5.6-sol@openai"]
    world, tokens = await world_ms(sim, OPENAI, "gpt-5.6-sol")
    assert world == pytest.approx(row["p50_ttft_ms"] + tokens * 1000 / row["output_tokens_per_s"], abs=1)


async def test_the_effort_that_selects_the_fast_variant_answers_in_its_time(sim):
    fast = ROWS["gpt-5.6-sol@openai"]["aa_fast_variant"]
    assert fast["reasoning_effort"] == "low"
    world, tokens = await world_ms(sim, OPENAI, "gpt-5.6-sol", reasoning_effort="low")
    assert world == pytest.approx(fast["p50_ttft_ms"] + tokens * 1000 / fast["output_tokens_per_s"], abs=1)
    high, _ = await world_ms(sim, OPENAI, "gpt-5.6-sol", reasoning_effort="high")
    assert high > 100_000  # another effort is the default variant's pace


async def test_missing_figures_fall_back_to_the_routers_priors(sim):
    groq, tokens = await world_ms(sim, GROQ, "llama-3.3-70b-versatile")  # fast tier: 200 ms to a first token
    assert groq == pytest.approx(200 + tokens * 1000 / ROWS["llama-3.3-70b@groq"]["output_tokens_per_s"], abs=1)
    name = ROWS["llama-3.3-70b@together"]["provider_model_name"]
    together, tokens = await world_ms(sim, TOGETHER, name)  # neither figure: 1000 ms and 50 tokens/s
    assert together == pytest.approx(1000 + tokens * 1000 / 50, abs=1)


async def test_a_fixed_latency_replaces_the_profile():
    app = create_app(latency_ms=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        body = {"model": "gpt-5.6-sol", "messages": [{"role": "user", "content": "hi"}]}
        r = await client.post(OPENAI, json=body, headers=BEARER)
    assert r.status_code == 200 and SKIPPED_HEADER not in r.headers


async def test_an_effort_the_model_does_not_accept_is_refused_as_openai_does(sim):
    body = {"model": "openai/gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}],
            "reasoning_effort": "none"}
    r = await sim.post(GROQ, json=body, headers=BEARER)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": "Unsupported value: 'reasoning_effort' does not support 'none' with this model. Supported "
                   "values are: 'low', 'medium', and 'high'.",
        "type": "invalid_request_error", "param": "reasoning_effort", "code": "unsupported_value"}


def test_every_fast_effort_is_one_the_model_accepts_and_has_a_source():
    efforts = {s: m for s, m in ROWS.items() if (m.get("aa_fast_variant") or {}).get("reasoning_effort")}
    assert "gpt-5.6-sol@openai" in efforts and "gpt-oss-120b@groq" in efforts
    for slug, m in efforts.items():
        assert m["aa_fast_variant"]["reasoning_effort"] in m["reasoning_efforts"], slug
        assert m["source"]["reasoning_effort"] in CATALOG["sources"], slug
