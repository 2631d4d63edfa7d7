"""The official `anthropic` SDK against `/v1/messages`, used as its docs show, with gateway, worker
and simulated provider running as processes: the same dispatch path as chat completions, answers
in Anthropic's shapes whichever provider served them."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

pytestmark = pytest.mark.e2e

CLAUDE = "claude-haiku-4.5@anthropic"
OPENAI = "gpt-4.1@openai"
WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
HELLO = [{"role": "user", "content": "Tell me about the sea, in a few sentences please."}]


@pytest.fixture(scope="module")
def tenant(system) -> dict[str, str]:
    return system.new_tenant("anthropic-sdk")


@pytest.fixture(scope="module")
def client(system, tenant) -> anthropic.Anthropic:
    return system.anthropic_client(tenant["api_key"])


def get(system, tenant, path: str) -> Any:
    r = httpx.get(f"{system.base_url}{path}", headers={"authorization": f"Bearer {tenant['api_key']}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("model", [CLAUDE, OPENAI])
def test_create_answers_an_anthropic_message_with_our_headers(system, tenant, client, model):
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=128, system=[{"type": "text", "text": "Be terse."}], messages=HELLO)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model  # the canonical slug, whichever wire format served it
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    job_id = raw.headers["x-ainfera-job-id"]
    assert raw.headers["x-ainfera-receipt-id"].startswith("rcpt_")
    assert float(raw.headers["x-ainfera-cost-usd"]) >= 0
    # The durable trail is the chat path's: the job, its receipt, the same answer.
    job = get(system, tenant, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded"
    assert job["response"]["choices"][0]["message"]["content"] == message.content[0].text
    receipt = get(system, tenant, f"/v1/receipts/{raw.headers['x-ainfera-receipt-id']}")
    assert receipt["model"] == model and receipt["status"] == "succeeded"


def test_ainfera_auto_routes_and_answers_in_anthropic_shape(client):
    message = client.messages.create(model="ainfera-auto", max_tokens=64, messages=HELLO)
    assert "@" in message.model  # a canonical slug, never the alias
    assert message.content[0].text
    # Steered off Anthropic by a routing hint: a non-Anthropic model, translated back all the same.
    eu = client.messages.create(model="ainfera-auto", max_tokens=64, messages=HELLO,
                                extra_body={"routing_hint": {"stack": "eu"}})
    assert not eu.model.endswith("@anthropic")
    assert eu.content[0].type == "text" and eu.content[0].text and eu.usage.output_tokens > 0


def test_anthropic_model_ids_name_the_catalog_row(client):
    message = client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=32, messages=HELLO)
    assert message.model == CLAUDE


@pytest.mark.parametrize("model", [CLAUDE, OPENAI])
def test_messages_stream_gives_text_and_the_final_message(client, model):
    with client.messages.stream(model=model, max_tokens=128, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.model == model
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    plain = client.messages.create(model=model, max_tokens=128, messages=HELLO)
    assert plain.content[0].text == text  # the simulator is deterministic


def test_create_with_stream_true_yields_anthropic_events(client):
    events = list(client.messages.create(model=OPENAI, max_tokens=64, messages=HELLO, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta" and "content_block_delta" in kinds
    assert kinds.index("content_block_start") < kinds.index("content_block_delta") < kinds.index(
        "content_block_stop")
    assert events[-2].delta.stop_reason in ("end_turn", "max_tokens") and events[-2].usage.output_tokens > 0
    assert events[0].message.model == OPENAI


@pytest.mark.parametrize("model", [CLAUDE, OPENAI])
def test_tool_use_then_tool_result_round_trip(client, model):
    question = {"role": "user", "content": "What is the weather in Lisbon? [sim:tool]"}
    first = client.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=[question])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input
    second = client.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=[
        question,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 C and sunny"},
                                     {"type": "text", "text": "Say it in one sentence."}]},
    ])
    assert second.stop_reason in ("end_turn", "max_tokens")
    assert second.content[0].type == "text" and second.content[0].text


@pytest.mark.parametrize("model", [CLAUDE, OPENAI])
def test_tool_use_streams_as_input_json_deltas(client, model):
    with client.messages.stream(model=model, max_tokens=256, tools=[WEATHER_TOOL], tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "Weather in Porto? [sim:tool]"}]) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("model", [CLAUDE, OPENAI])
def test_cache_control_markers_are_accepted(client, model):
    message = client.messages.create(
        model=model, max_tokens=64,
        system=[{"type": "text", "text": "You are a sea captain.", "cache_control": {"type": "ephemeral"}}],
        tools=[{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Tell me of storms.", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}])
    assert message.content[0].text


def test_a_wrong_key_is_an_authentication_error(system):
    with pytest.raises(anthropic.AuthenticationError) as e:
        system.anthropic_client("sk-ainf-nope").messages.create(model=CLAUDE, max_tokens=8, messages=HELLO)
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"


def test_a_bearer_key_works_too(system, tenant):
    bearer = anthropic.Anthropic(base_url=system.base_url, auth_token=tenant["api_key"], max_retries=0)
    assert bearer.messages.create(model=CLAUDE, max_tokens=16, messages=HELLO).content


def test_bad_requests_are_anthropic_errors(client):
    with pytest.raises(anthropic.BadRequestError) as e:
        # The SDK needs max_tokens; `omit` leaves it out (a timeout is given, which it would compute from it).
        client.messages.create(model=CLAUDE, messages=HELLO, max_tokens=anthropic.omit, timeout=30)
    assert e.value.body["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(model="no-such-model@nowhere", max_tokens=8, messages=HELLO)
    assert nf.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=CLAUDE, max_tokens=8, messages=[{"role": "system", "content": "x"}])


def test_a_provider_failure_before_the_first_event_is_a_plain_error(client):
    prompt = [{"role": "user", "content": "x [sim:fail=400]"}]
    with pytest.raises(anthropic.BadRequestError) as e, client.messages.stream(
            model=OPENAI, max_tokens=16, messages=prompt) as stream:
        stream.get_final_message()
    assert e.value.body["type"] == "error"


def test_a_stream_broken_mid_way_ends_with_an_error_event(client):
    seen: list[str] = []
    prompt = [{"role": "user", "content": "A long answer please, about rivers. [sim:cut-stream=4]"}]
    with client.messages.stream(model=OPENAI, max_tokens=512, messages=prompt) as stream, \
            pytest.raises(anthropic.APIStatusError) as e:
        for text in stream.text_stream:
            seen.append(text)
    assert seen  # part of the answer arrived before the break
    assert e.value.body["error"]["type"] == "api_error"


def test_count_tokens_is_our_marked_estimate(client):
    raw = client.messages.with_raw_response.count_tokens(model=CLAUDE, messages=HELLO, tools=[WEATHER_TOOL])
    assert raw.headers["x-ainfera-estimate"] == "true"
    with_tool = raw.parse().input_tokens
    alone = client.messages.count_tokens(model=CLAUDE, messages=HELLO).input_tokens
    assert 0 < alone < with_tool
    assert client.messages.count_tokens(model="ainfera-auto", messages=HELLO * 3).input_tokens > alone


def test_a_repeated_idempotency_key_replays_the_message_and_the_stream(client):
    key = {"Idempotency-Key": "anthropic-replay-1"}
    first = client.messages.with_raw_response.create(model=OPENAI, max_tokens=32, messages=HELLO, extra_headers=key)
    again = client.messages.with_raw_response.create(model=OPENAI, max_tokens=32, messages=HELLO, extra_headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().model_dump() == first.parse().model_dump()
    streamed = {"Idempotency-Key": "anthropic-replay-2"}
    with client.messages.stream(model=OPENAI, max_tokens=32, messages=HELLO, extra_headers=streamed) as stream:
        live = stream.get_final_message()
    with client.messages.stream(model=OPENAI, max_tokens=32, messages=HELLO, extra_headers=streamed) as stream:
        replayed = stream.get_final_message()
    assert replayed.id == live.id and replayed.content == live.content
    assert replayed.usage.output_tokens == live.usage.output_tokens
