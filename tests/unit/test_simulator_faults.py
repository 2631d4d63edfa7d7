"""Faults the simulator injects on request: prompt directives and the control API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import orjson
import pytest

from shared.simulator.directives import Directives, parse_directives, parse_fault_spec
from shared.simulator.server import SimulatorApp, create_app

GROQ = "/api.groq.com/openai/v1/chat/completions"
ANTHROPIC = "/api.anthropic.com/v1/messages"
BEARER = {"Authorization": "Bearer sim-key"}
ANTHROPIC_HEADERS = {"x-api-key": "sim-key", "anthropic-version": "2023-06-01"}
MODEL = "llama-3.3-70b-versatile"


@pytest.fixture
def app() -> SimulatorApp:
    return create_app(latency_ms=0)


@pytest.fixture
async def sim(app: SimulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        yield client


def chat(text: str, model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def call_raw(
    app: SimulatorApp, body: dict[str, Any], *, disconnect: asyncio.Event
) -> list[MutableMapping[str, Any]]:
    """Run one request through the ASGI app and return every message it sent."""
    sent: list[MutableMapping[str, Any]] = []
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": orjson.dumps(body), "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": GROQ,
        "headers": [(b"authorization", b"Bearer sim-key"), (b"content-type", b"application/json")],
    }
    await app(scope, receive, send)
    return sent


# --- directive syntax --------------------------------------------------------------------


def test_directives_are_read_from_text() -> None:
    found = parse_directives("hello [sim:fail=429] [sim:retry-after=3] [sim:fail-times=2] [sim:latency=15]")
    assert found == Directives(latency_ms=15.0, fail_status=429, retry_after_s=3.0, fail_times=2)
    assert parse_directives("[sim:drip]").drip_interval_ms == 500.0
    assert parse_directives("[sim:drip=20]").drip_interval_ms == 20.0
    assert parse_directives("[sim:hang][sim:malformed][sim:truncated][sim:tool]") == Directives(
        hang=True, malformed=True, truncated=True, tool=True
    )


def test_ill_formed_prompt_directives_are_ignored() -> None:
    assert parse_directives("plain text") == Directives()
    assert parse_directives("[sim:fail=200] [sim:latency=soon] [sim:explode]") == Directives()


def test_fault_specs_are_strict() -> None:
    assert parse_fault_spec("fail=429 retry-after=2") == Directives(fail_status=429, retry_after_s=2.0)
    assert parse_fault_spec("hang") == Directives(hang=True)
    for bad in ("", "explode", "fail=abc", "fail=302", "hang=3"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


# --- directives in prompts ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_fail_directive_answers_with_that_status(sim: httpx.AsyncClient, status: int) -> None:
    response = await sim.post(GROQ, headers=BEARER, json=chat(f"hi [sim:fail={status}]"))
    assert response.status_code == status
    assert "message" in response.json()["error"]


async def test_fail_429_sends_retry_after(sim: httpx.AsyncClient) -> None:
    default = await sim.post(GROQ, headers=BEARER, json=chat("hi [sim:fail=429]"))
    assert default.status_code == 429
    assert default.headers["retry-after"] == "1"
    assert default.json()["error"]["code"] == "rate_limit_exceeded"
    custom = await sim.post(
        ANTHROPIC,
        headers=ANTHROPIC_HEADERS,
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi [sim:fail=429] [sim:retry-after=7]"}],
        },
    )
    assert custom.status_code == 429
    assert custom.headers["retry-after"] == "7"
    assert custom.json()["error"]["type"] == "rate_limit_error"


async def test_fail_times_fails_only_the_first_identical_requests(sim: httpx.AsyncClient) -> None:
    body = chat("count me [sim:fail=503] [sim:fail-times=2]")
    statuses = [(await sim.post(GROQ, headers=BEARER, json=body)).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    other_prompt = chat("another one [sim:fail=503] [sim:fail-times=2]")
    assert (await sim.post(GROQ, headers=BEARER, json=other_prompt)).status_code == 503


async def test_only_the_last_user_message_carries_directives(sim: httpx.AsyncClient) -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "[sim:fail=500]"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "fine now"},
        ],
    }
    assert (await sim.post(GROQ, headers=BEARER, json=body)).status_code == 200


async def test_malformed_directive_answers_200_with_invalid_json(sim: httpx.AsyncClient) -> None:
    response = await sim.post(GROQ, headers=BEARER, json=chat("hi [sim:malformed]"))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        orjson.loads(response.content)


async def test_latency_directive_delays_the_answer(app: SimulatorApp) -> None:
    never = asyncio.Event()
    task = asyncio.ensure_future(call_raw(app, chat("hi [sim:latency=60000]"), disconnect=never))
    done, _ = await asyncio.wait({task}, timeout=0.05)
    assert not done  # still waiting out its minute
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_truncated_directive_closes_before_content_length(app: SimulatorApp) -> None:
    sent = await call_raw(app, chat("hi [sim:truncated]"), disconnect=asyncio.Event())
    start, *bodies = sent
    declared = int(dict(start["headers"])[b"content-length"])
    received = b"".join(m["body"] for m in bodies)
    assert start["status"] == 200
    assert 0 < len(received) < declared
    assert bodies[-1]["more_body"] is True  # the response is never completed


async def test_drip_directive_sends_the_body_one_byte_at_a_time(app: SimulatorApp) -> None:
    sent = await call_raw(app, chat("hi [sim:drip=0]"), disconnect=asyncio.Event())
    start, *bodies = sent
    body = b"".join(m["body"] for m in bodies)
    assert int(dict(start["headers"])[b"content-length"]) == len(body)
    assert all(len(m["body"]) == 1 for m in bodies)
    assert orjson.loads(body)["object"] == "chat.completion"


async def test_drip_stops_when_the_client_disconnects(app: SimulatorApp) -> None:
    gone = asyncio.Event()
    gone.set()
    sent = await call_raw(app, chat("hi [sim:drip=50]"), disconnect=gone)
    assert len(sent) == 2  # status line and one byte, then the client was gone


async def test_hang_directive_sends_nothing_until_the_client_leaves(app: SimulatorApp) -> None:
    gone = asyncio.Event()
    gone.set()
    sent = await call_raw(app, chat("hi [sim:hang]"), disconnect=gone)
    assert sent == []


# --- control API -------------------------------------------------------------------------


async def test_fault_rule_applies_to_matching_requests_for_its_times(sim: httpx.AsyncClient) -> None:
    created = await sim.post(
        "/_sim/faults", json={"host": "api.groq.com", "model": MODEL, "fault": "fail=500", "times": 2}
    )
    assert created.status_code == 201
    statuses = [(await sim.post(GROQ, headers=BEARER, json=chat("hi"))).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await sim.get("/_sim/faults")).json() == {"rules": []}


async def test_fault_rule_without_times_lasts_until_deleted(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/faults", json={"fault": "fail=429 retry-after=4"})
    response = await sim.post(GROQ, headers=BEARER, json=chat("hi"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
    other_model = await sim.post(
        "/api.deepseek.com/chat/completions", headers=BEARER, json=chat("hi", model="deepseek-v4-pro")
    )
    assert other_model.status_code == 429
    assert (await sim.delete("/_sim/faults")).json() == {"deleted": 1}
    assert (await sim.post(GROQ, headers=BEARER, json=chat("hi"))).status_code == 200


async def test_fault_rule_for_another_host_does_not_apply(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/faults", json={"host": "api.anthropic.com", "fault": "fail=500"})
    assert (await sim.post(GROQ, headers=BEARER, json=chat("hi"))).status_code == 200


@pytest.mark.parametrize(
    "rule", [{"fault": "explode"}, {"fault": "fail=500", "times": 0}, {"times": 1}, {"fault": "hang", "host": 3}]
)
async def test_invalid_fault_rules_are_refused(sim: httpx.AsyncClient, rule: dict[str, Any]) -> None:
    assert (await sim.post("/_sim/faults", json=rule)).status_code == 400


async def test_stats_count_requests_per_host_and_model(sim: httpx.AsyncClient) -> None:
    await sim.post(GROQ, headers=BEARER, json=chat("one"))
    await sim.post(GROQ, headers=BEARER, json=chat("two [sim:fail=500]"))
    await sim.post("/api.openai.com/v1/v1/chat/completions", headers=BEARER, json=chat("x", model="gpt-4o"))
    stats = (await sim.get("/_sim/stats")).json()
    assert stats["total"] == 3
    assert stats["by_host"] == {"api.groq.com": 2, "api.openai.com": 1}
    assert stats["by_model"] == {MODEL: 2}
    assert stats["by_status"] == {"200": 1, "404": 1, "500": 1}
    await sim.delete("/_sim/stats")
    assert (await sim.get("/_sim/stats")).json() == {"total": 0, "by_host": {}, "by_model": {}, "by_status": {},
                                                     "streams": {}}
