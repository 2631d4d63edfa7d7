"""Hostile and malformed input on `/v1/messages` through the real gateway: a 4xx in Anthropic's error
shape (`invalid_request_error` for what is wrong with the body), never a 500, and no job created."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker
from tests.integration.test_hostile_input import DEEP, count, with_deep

pytestmark = pytest.mark.integration

MESSAGE = {"model": "claude-haiku-4.5@anthropic", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
async def system(settings: Settings, sim):
    _tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"x-api-key": key, "anthropic-version": "2023-06-01"}


def refused(r, status: int = 400, kind: str = "invalid_request_error") -> str:
    """The response is Anthropic's error shape with this status and type; returns its message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["type"] == kind, body
    return str(body["error"]["message"])


def with_messages(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**MESSAGE, "messages": list(messages), **fields}


USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({k: v for k, v in MESSAGE.items() if k != "max_tokens"}, "max_tokens: Field required"),
        ({**MESSAGE, "max_tokens": "32"}, "max_tokens"),
        ({**MESSAGE, "max_tokens": 0}, "max_tokens"),
        ({**MESSAGE, "temperature": 1.5}, "temperature"),
        ({**MESSAGE, "stream": "yes"}, "stream"),
        ({**MESSAGE, "messages": []}, "messages"),
        (with_messages({"role": "system", "content": "x"}), "messages.0.role"),
        (with_messages({"role": "user", "content": 7}), "messages.0.content"),
        (with_messages({"role": "user", "content": [{"type": "video", "url": "x"}]}), "messages.0.content.0"),
        (with_messages({"role": "user", "content": [{"type": "text"}]}), "messages.0.content.0.text"),
        (with_messages({"role": "user", "content": [{"type": "image", "source": {
            "type": "base64", "media_type": "image/tiff", "data": "AAAA"}}]}), "media_type"),
        (with_messages({"role": "user", "content": [{"type": "image", "source": {
            "type": "url", "url": "file:///etc/passwd"}}]}), "url"),
        (with_messages({"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}),
         "assistant message cannot hold a tool_result"),
        ({**MESSAGE, "tools": [{**TOOL, "name": "bad name!"}]}, "tools.0.name"),
        ({**MESSAGE, "tools": [{"name": "t"}]}, "tools.0.input_schema: Field required"),
        ({**MESSAGE, "tool_choice": {"type": "any"}}, "tool_choice"),
        ({**MESSAGE, "tools": [TOOL], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({**MESSAGE, "system": [{"type": "text", "text": "x", "cache_control": {"type": "forever"}}]},
         "cache_control"),
        ({**MESSAGE, "stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
        ({**MESSAGE, "metadata": {"user_id": 5}}, "metadata.user_id"),
        ({**MESSAGE, "seed": 3}, "seed: Extra inputs are not permitted"),
        ({**MESSAGE, "base_url": "http://evil.example"}, "base_url"),
        ([MESSAGE], "JSON object"),
    ],
)
async def test_a_malformed_message_is_a_400_in_anthropics_shape(system, settings, body, says):
    client, auth = system
    assert says in refused(await client.post("/v1/messages", json=body, headers=auth))
    assert await count(settings, "jobs") == 0


async def test_a_nul_character_anywhere_is_a_400(system, settings):
    client, auth = system
    for body in (with_messages({"role": "user", "content": "hi\u0000there"}),
                 {**MESSAGE, "system": "be\u0000good"},
                 {**MESSAGE, "tools": [{**TOOL, "description": "\u0000"}]}):
        assert "U+0000" in refused(await client.post("/v1/messages", json=body, headers=auth))
        assert "U+0000" in refused(await client.post("/v1/messages/count_tokens", json=body, headers=auth))
    assert await count(settings, "jobs") == 0


@pytest.mark.parametrize("field", [
    {"tools": [{"name": "t", "input_schema": DEEP}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "citations": DEEP}]}]},
    {"thinking": DEEP},
], ids=["tool_schema", "ignored_block_field", "thinking"])
async def test_json_nested_hundreds_of_levels_deep_is_a_400(system, settings, field):
    client, auth = system
    r = await client.post("/v1/messages", content=with_deep({**MESSAGE, **field}, 300),
                          headers={**auth, "content-type": "application/json"})
    assert "64" in refused(r)
    assert await count(settings, "jobs") == 0


async def test_a_body_over_the_size_limit_is_413_request_too_large(system, settings):
    client, auth = system
    huge = with_messages({"role": "user", "content": "x" * (settings.max_request_bytes + 1)})
    refused(await client.post("/v1/messages", json=huge, headers=auth), 413, "request_too_large")
    refused(await client.post("/v1/messages", content=b"{not json", headers=auth))


async def test_anthropic_version_may_be_absent_or_a_date_and_beta_is_ignored(system):
    client, auth = system
    no_version = {"x-api-key": auth["x-api-key"]}
    counted = await client.post("/v1/messages/count_tokens", json=MESSAGE, headers=no_version)
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    beta = {**auth, "anthropic-beta": "no-such-beta-2099-01-01,prompt-caching-2024-07-31"}
    assert (await client.post("/v1/messages/count_tokens", json=MESSAGE, headers=beta)).status_code == 200
    garbage = {**auth, "anthropic-version": "latest"}
    assert "anthropic-version" in refused(await client.post("/v1/messages", json=MESSAGE, headers=garbage))


async def test_unknown_model_and_wrong_method_are_anthropic_errors(system):
    client, auth = system
    refused(await client.post("/v1/messages", json={**MESSAGE, "model": "gpt-9@nowhere"}, headers=auth), 404,
            "not_found_error")
    refused(await client.post("/v1/messages/count_tokens", json={**MESSAGE, "model": "x@y"}, headers=auth), 404,
            "not_found_error")
    refused(await client.get("/v1/messages", headers=auth), 405)
    refused(await client.post("/v1/messages/nope", json=MESSAGE, headers=auth), 404, "not_found_error")


async def test_fields_without_a_chat_equivalent_are_reported_as_dropped(system):
    client, auth = system
    body = {**MESSAGE, "top_k": 5, "context_management": {"edits": []}}
    r = await client.post("/v1/messages", json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["x-ainfera-dropped-params"] == "context_management, top_k"
    assert r.json()["type"] == "message" and r.json()["ainfera"]["dropped_params"]


async def test_thinking_reaches_claude_and_is_dropped_when_it_cannot_fit(system, sim):
    client, auth = system
    thinking = {"type": "enabled", "budget_tokens": 2048}
    r = await client.post("/v1/messages", json={**MESSAGE, "max_tokens": 4096, "thinking": thinking}, headers=auth)
    assert r.status_code == 200, r.text
    [entry] = (await sim.get("/_sim/requests")).json()["requests"]
    assert entry["body"]["thinking"] == thinking
    # A budget not below max_tokens would be refused by Claude: not sent, and said so.
    r = await client.post("/v1/messages", json={**MESSAGE, "thinking": thinking}, headers=auth)
    assert r.status_code == 200 and r.headers["x-ainfera-dropped-params"] == "thinking"
