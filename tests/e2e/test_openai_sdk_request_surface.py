"""Today's Chat Completions fields, sent by the official `openai` SDK as its users send them: each
is accepted, forwarded where the provider takes it, and reported where it is not."""

from __future__ import annotations

import json
import time

import openai
import pytest

pytestmark = pytest.mark.e2e

OPENAI_MODEL = "gpt-5.4-mini@openai"
OTHER_VENDOR = "llama-3.3-70b@deepinfra"
GROQ = "llama-3.3-70b@groq"
USER = [{"role": "user", "content": "Say something short."}]


@pytest.fixture(scope="module")
def tenant(system) -> dict[str, str]:
    return system.new_tenant("surface")


@pytest.fixture(scope="module")
def client(system, tenant) -> openai.OpenAI:
    return system.openai_client(tenant["api_key"])


def test_current_sdk_fields_work_and_what_a_vendor_does_not_take_is_reported(client):
    raw = client.chat.completions.with_raw_response.create(
        model=OTHER_VENDOR, messages=USER, max_tokens=32, prompt_cache_key="tenant-42",
        safety_identifier="user-7f3a", verbosity="low", store=False, seed=3)
    resp = raw.parse()
    assert resp.choices[0].message.content
    dropped = ["prompt_cache_key", "safety_identifier", "store", "verbosity"]
    assert raw.headers["x-ainfera-dropped-params"] == ", ".join(dropped)
    assert resp.model_extra["ainfera"]["dropped_params"] == dropped


def test_a_stream_reports_what_was_not_forwarded_in_its_headers_too(client):
    with client.chat.completions.with_streaming_response.create(
            model=OTHER_VENDOR, messages=USER, stream=True, prompt_cache_key="k",
            extra_body={"frobnicate": 1}) as response:
        assert response.headers["x-ainfera-dropped-params"] == "frobnicate, prompt_cache_key"
        chunks = list(response.parse())
    assert chunks[-1].model_extra["ainfera"]["dropped_params"] == ["frobnicate", "prompt_cache_key"]


def test_openai_itself_is_sent_its_own_fields_and_n_choices(client):
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=USER, n=2, prompt_cache_key="k", safety_identifier="s")
    resp = raw.parse()
    assert [c.index for c in resp.choices] == [0, 1]
    assert "x-ainfera-dropped-params" not in raw.headers
    assert resp.usage.prompt_tokens_details is not None  # kept as the provider sent it
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0


def test_n_where_the_provider_cannot_serve_it_is_a_400_naming_field_and_model(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=GROQ, messages=USER, n=2)
    assert e.value.param == "n" and GROQ in e.value.message


def test_ainfera_auto_routes_n_to_a_model_that_serves_it(client):
    resp = client.chat.completions.create(model="ainfera-auto", messages=USER, n=2)
    assert len(resp.choices) == 2
    assert not resp.model.endswith(("@groq", "@anthropic"))


def test_an_unknown_field_is_accepted_reported_and_not_forwarded(client):
    raw = client.chat.completions.with_raw_response.create(model=OTHER_VENDOR, messages=USER,
                                                           extra_body={"frobnicate": True})
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ainfera-dropped-params"] == "frobnicate"


def test_a_tenant_with_strict_params_gets_openais_400_for_it(system):
    tenant = system.new_tenant("strict")
    out = system.cli("tenant", "set-policy", "--tenant", tenant["tenant_id"], "--policy",
                     json.dumps({"strict_params": True}))
    assert out.returncode == 0, out.stderr
    strict = system.openai_client(tenant["api_key"])
    deadline = time.monotonic() + 10
    while True:  # the gateway hears of the policy change through a notification
        try:
            strict.chat.completions.create(model=OTHER_VENDOR, messages=USER, extra_body={"frobnicate": True})
        except openai.BadRequestError as e:
            assert e.param == "frobnicate" and e.code == "unknown_parameter"
            return
        assert time.monotonic() < deadline, "the strict policy never took effect"
        time.sleep(0.1)


def test_legacy_functions_are_answered_as_function_call(client):
    resp = client.chat.completions.create(
        model=OTHER_VENDOR, messages=[{"role": "user", "content": "Weather in Oslo? [sim:tool]"}],
        functions=[{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}],
        function_call={"name": "get_weather"})
    choice = resp.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call.name == "get_weather"
    assert "city" in json.loads(choice.message.function_call.arguments)
    assert not choice.message.tool_calls
