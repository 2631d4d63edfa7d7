"""Streaming through the queue, seen by the official `openai` SDK as its docs show it
(`stream=True`, iterate the chunks), against gateway, worker and simulator processes."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

PINNED = "deepseek-v4-flash@deepinfra"
ANTHROPIC = "claude-haiku-4.5@anthropic"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def tenant(system) -> dict[str, str]:
    return system.new_tenant("streaming")


@pytest.fixture(scope="module")
def client(system, tenant) -> openai.OpenAI:
    return system.openai_client(tenant["api_key"])


def get(system, tenant, path: str) -> Any:
    r = httpx.get(f"{system.base_url}{path}", headers={"authorization": f"Bearer {tenant['api_key']}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def sim_streams(system) -> dict[str, int]:
    with urllib.request.urlopen(f"{system.sim_url}/_sim/stats", timeout=5) as r:
        return dict(json.loads(r.read())["streams"])


@pytest.mark.parametrize("model", [PINNED, ANTHROPIC])
def test_text_streams_in_openai_chunks_and_matches_the_stored_answer(system, tenant, client, model):
    prompt = [{"role": "user", "content": "Tell me a story about the sea, in a few sentences please."}]
    chunks = list(client.chat.completions.create(model=model, messages=prompt, stream=True))
    assert len(chunks) >= 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.model for c in chunks} == {model}
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    meta = chunks[-1].model_extra["ainfera"]
    assert meta["receipt_id"].startswith("rcpt_")
    # The whole answer is stored once, as the non-streamed answer would have been.
    job = get(system, tenant, f"/v1/jobs/{meta['job_id']}")
    assert job["status"] == "succeeded"
    assert job["response"]["choices"][0]["message"]["content"] == text
    receipt = get(system, tenant, f"/v1/receipts/{meta['receipt_id']}")
    assert receipt["streamed"] is True and receipt["status"] == "succeeded"
    assert receipt["usage"]["output_tokens"] > 0 and "usage_estimated" not in receipt
    plain = client.chat.completions.create(model=model, messages=prompt)
    assert plain.choices[0].message.content == text  # the simulator is deterministic


def test_include_usage_sends_the_usage_chunk_last(client):
    chunks = list(client.chat.completions.create(
        model=PINNED, messages=[{"role": "user", "content": "Count to five."}], stream=True,
        stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert last.model_extra["ainfera"]["cost_usd"] is not None


@pytest.mark.parametrize("model", [PINNED, ANTHROPIC])
def test_tool_calls_stream_as_openai_tool_call_deltas(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Lisbon? [sim:tool]"}],
        tools=[WEATHER_TOOL], stream=True)
    name, arguments, finish = "", "", None
    for c in stream:
        for choice in c.choices:
            for call in choice.delta.tool_calls or ():
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert "city" in json.loads(arguments)
    assert finish == "tool_calls"


def test_a_failure_before_the_first_token_is_a_plain_error(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=PINNED, messages=[{"role": "user", "content": "x [sim:fail=400]"}],
                                       stream=True)


def test_a_stream_broken_mid_way_ends_with_an_error_event_and_bills_what_was_generated(system, tenant, client):
    stream = client.chat.completions.with_streaming_response.create(
        model=PINNED, messages=[{"role": "user", "content": "A long answer please, about rivers. [sim:cut-stream=4]"}],
        stream=True)
    with stream as response:
        job_id = response.headers["x-ainfera-job-id"]
        seen = []
        with pytest.raises(openai.APIError):
            for c in response.parse():
                seen.append(c)
    assert seen  # part of the answer arrived before the break
    receipt = receipt_of(system, tenant, job_id)
    assert receipt["status"] == "failed" and receipt["error_code"] == "upstream_stream_interrupted"
    assert receipt["usage"]["output_tokens"] > 0 and float(receipt["cost_usd"]) > 0


def test_a_client_that_disconnects_cancels_the_upstream_call(system, tenant, client):
    before = sim_streams(system).get("aborted", 0)
    prompt = "A long answer please, about mountains and valleys and the sea. [sim:chunk-ms=100]"
    with client.chat.completions.with_streaming_response.create(
            model=PINNED, messages=[{"role": "user", "content": prompt}], stream=True) as response:
        job_id = response.headers["x-ainfera-job-id"]
        for i, _ in enumerate(response.parse()):
            if i == 1:
                break  # leaving the block closes the connection
    receipt = receipt_of(system, tenant, job_id)
    assert receipt["status"] == "cancelled" and receipt["error_code"] == "client_disconnected"
    assert receipt["usage"]["output_tokens"] > 0
    deadline = time.monotonic() + 10
    while sim_streams(system).get("aborted", 0) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim_streams(system).get("aborted", 0) == before + 1  # the upstream call was stopped, not finished
    assert get(system, tenant, f"/v1/jobs/{job_id}")["status"] == "cancelled"


def test_a_client_that_leaves_before_the_first_chunk_still_stops_the_upstream_call(system, tenant):
    before = sim_streams(system).get("aborted", 0)
    body = {"model": PINNED, "stream": True,
            "messages": [{"role": "user", "content": "Slow start. [sim:latency=1500] [sim:chunk-ms=200]"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{system.base_url}/v1/chat/completions", json=body, timeout=httpx.Timeout(10, read=0.5),
                   headers={"authorization": f"Bearer {tenant['api_key']}"})
    deadline = time.monotonic() + 15
    while sim_streams(system).get("aborted", 0) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim_streams(system).get("aborted", 0) == before + 1


def test_a_repeated_idempotency_key_replays_the_stream(client):
    kwargs: dict[str, Any] = {"model": PINNED, "messages": [{"role": "user", "content": "Once, please."}],
                              "stream": True, "extra_headers": {"Idempotency-Key": "stream-once-1"}}
    first = list(client.chat.completions.create(**kwargs))
    again = list(client.chat.completions.create(**kwargs))
    text = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices) for chunks in (first, again)]
    assert text[0] and text[0] == text[1]
    assert first[-1].model_extra["ainfera"]["job_id"] == again[-1].model_extra["ainfera"]["job_id"]


def test_stream_with_respond_async_is_refused(system, tenant):
    r = httpx.post(f"{system.base_url}/v1/chat/completions", timeout=10,
                   headers={"authorization": f"Bearer {tenant['api_key']}", "prefer": "respond-async"},
                   json={"model": PINNED, "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream"


def test_stream_options_without_stream_is_refused_as_openai_does(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=PINNED, messages=[{"role": "user", "content": "x"}],
                                       stream_options={"include_usage": True})
    assert e.value.param == "stream_options"


def receipt_of(system, tenant, job_id: str) -> dict[str, Any]:
    """The job's receipt once it has one (a cancelled job finishes just after its caller left; a
    synchronous job has no row before that)."""
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(f"{system.base_url}/v1/jobs/{job_id}", timeout=10,
                      headers={"authorization": f"Bearer {tenant['api_key']}"})
        if r.status_code == 200 and r.json().get("receipt_id"):
            return get(system, tenant, f"/v1/receipts/{r.json()['receipt_id']}")
        assert r.status_code in (200, 404) and time.monotonic() < deadline, r.text
        time.sleep(0.05)
