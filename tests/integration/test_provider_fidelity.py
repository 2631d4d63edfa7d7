"""Provider fidelity on the strict simulator: the request a classic client sends succeeds on every
seeded model, each provider receives what its documentation accepts, structured output only
lands on models that can give it, and a model that refuses a parameter hands the request on."""

from __future__ import annotations

import orjson
import pytest

from shared.catalog.param_rules import StructuredOutput, TokenLimitField, rules_for
from shared.catalog.types import Catalog, WireFormat
from shared.settings import Settings
from shared.simulator.param_check import anthropic_violation
from tests.harness import new_tenant, running_gateway, running_worker, seeded_catalog

pytestmark = pytest.mark.integration

CLASSIC = {"messages": [{"role": "user", "content": "Name three rivers."}], "max_tokens": 64, "temperature": 0.2}
PLACE = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
         "required": ["city", "population"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "place", "schema": PLACE, "strict": True}}


async def seeded(settings: Settings) -> Catalog:
    catalog: Catalog = await seeded_catalog(settings)
    return catalog


@pytest.fixture
async def system(settings: Settings, sim):
    _, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}


async def test_the_classic_request_succeeds_on_every_seeded_model_and_each_provider_gets_what_it_accepts(
        system, settings, sim):
    client, auth = system
    catalog = await seeded(settings)
    servable = sorted(slug for slug, m in catalog.models.items() if catalog.servable(m))
    assert len(servable) > 100
    failures, reported = {}, {}
    for slug in servable:
        r = await client.post("/v1/chat/completions", json={"model": slug, **CLASSIC}, headers=auth)
        if r.status_code != 200:
            failures[slug] = r.text
        reported[slug] = r.headers.get("x-ainfera-dropped-params", "")
    assert failures == {}

    received = (await sim.get("/_sim/requests")).json()["requests"]
    by_model = {(m.provider, m.upstream_model): m for m in catalog.models.values()}
    assert len(received) == len(servable)
    for entry in received:
        model = by_model[(entry["provider"], entry["model"])]
        provider = catalog.providers[model.provider]
        rules, body = rules_for(model.provider, model.upstream_model), entry["body"]
        if provider.wire_format is WireFormat.ANTHROPIC_MESSAGES:
            assert body["max_tokens"] == 64 and anthropic_violation(rules, body) is None
            assert body.get("temperature") in (0.2, None) and "top_p" not in body
        elif rules.token_limit_field is TokenLimitField.MAX_COMPLETION_TOKENS:
            # OpenAI's reasoning models: the limit under its new name, the non-default temperature not sent.
            assert "max_tokens" not in body and body["max_completion_tokens"] == 64, model.slug
            assert "temperature" not in body, model.slug
            assert reported[model.slug] == "max_tokens->max_completion_tokens, temperature"
        else:
            assert body["max_tokens"] == 64, model.slug
            if rules.drops("temperature", 0.2):  # refused, or accepted for nothing (DeepSeek's thinking models)
                assert "temperature" not in body and "temperature" in reported[model.slug], model.slug
            else:
                assert body["temperature"] == 0.2, model.slug


async def test_ainfera_auto_with_a_json_schema_only_lands_on_models_with_structured_output(system, settings):
    client, auth = system
    catalog = await seeded(settings)
    for hint in ({}, {"max_cost_usd": 0.0005}, {"latency_budget_ms": 400}):
        body = {"model": "ainfera-auto", "messages": [{"role": "user", "content": "Where is the Louvre?"}],
                "response_format": JSON_SCHEMA, "routing_hint": hint}
        explained = await client.post("/v1/routing/explain", json=body, headers=auth)
        assert explained.status_code == 200, (hint, explained.text)
        plan = explained.json()
        for slug in [plan["model"], *plan["fallbacks"]]:
            model = catalog.models[slug]
            capable = rules_for(model.provider, model.upstream_model).structured_output
            assert capable in (StructuredOutput.JSON_SCHEMA, StructuredOutput.TOOL), (hint, slug)
        r = await client.post("/v1/chat/completions", json=body, headers=auth)
        assert r.status_code == 200, r.text
        answer = orjson.loads(r.json()["choices"][0]["message"]["content"])
        assert set(answer) == {"city", "population"}


async def test_a_pinned_model_without_structured_output_is_refused_naming_the_field(system):
    client, auth = system
    body = {"model": "llama-3.3-70b@groq", "messages": [{"role": "user", "content": "x"}],
            "response_format": JSON_SCHEMA}
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "response_format.json_schema"


async def test_claude_gets_native_structured_output_and_answers_json(system, sim):
    client, auth = system
    body = {"model": "claude-sonnet-4.5@anthropic", "messages": [{"role": "user", "content": "Where is the Louvre?"}],
            "response_format": JSON_SCHEMA, "max_tokens": 200}
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert set(orjson.loads(r.json()["choices"][0]["message"]["content"])) == {"city", "population"}
    [entry] = (await sim.get("/_sim/requests")).json()["requests"]
    assert entry["body"]["output_config"] == {"format": {"type": "json_schema", "schema": PLACE}}


async def test_a_model_that_refuses_a_parameter_hands_the_request_to_the_next_candidate(system, settings, sim):
    client, auth = system
    body = {"model": "ainfera-auto", "messages": [{"role": "user", "content": "Summarise Hamlet."}],
            "routing_hint": {"stack": "china"}}
    plan = (await client.post("/v1/routing/explain", json=body, headers=auth)).json()
    first, second = plan["model"], plan["fallbacks"][0]
    catalog = await seeded(settings)
    await sim.post("/_sim/faults", json={"model": catalog.models[first].upstream_model, "fault": "unsupported"})
    r = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == second
    [fallback] = out["ainfera"]["fallbacks"]
    assert fallback["slug"] == first and fallback["error"]["code"] == "unsupported_parameter"


async def test_a_pinned_model_that_refuses_a_parameter_is_a_clear_400(system, settings, sim):
    client, auth = system
    await sim.post("/_sim/faults", json={"model": "llama-3.3-70b-versatile", "fault": "unsupported"})
    r = await client.post("/v1/chat/completions", json={"model": "llama-3.3-70b@groq", **CLASSIC}, headers=auth)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "unsupported_parameter"
