"""One contract every adapter passes, against the simulated provider served over real sockets.

URLs are built as production builds them (`chat_url` + `route_via`), so a wrong host,
path or model name fails here the way it would upstream.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shared.catalog.types import WireFormat
from shared.catalog.urls import chat_url, route_via
from shared.errors import (
    UpstreamAuthFailed,
    UpstreamMalformed,
    UpstreamMisconfigured,
    UpstreamModelNotFound,
    UpstreamServerError,
    UpstreamTimeout,
)
from shared.providers.classify import MODEL_NOT_FOUND_CODE, PATH_NOT_FOUND_CODE
from shared.providers.fastpath import LeanTransport
from shared.providers.registry import adapter_for
from shared.providers.transport import RetryPolicy, UpstreamResult, send
from shared.providers.types import UpstreamRequest
from shared.simulator.answers import output_ratio
from tests.integration.simulator_server import running_simulator


@dataclass(frozen=True)
class Target:
    provider: str
    base_url: str
    path: str | None
    wire: WireFormat
    model: str

    @property
    def url(self) -> str:
        return chat_url(self.base_url, self.path, self.wire)


TARGETS = [
    Target(
        "groq", "https://api.groq.com/openai/v1", "/chat/completions", WireFormat.OPENAI_CHAT, "llama-3.3-70b-versatile"
    ),
    Target("deepseek", "https://api.deepseek.com", "/chat/completions", WireFormat.OPENAI_CHAT, "deepseek-v4-flash"),
    Target(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "/chat/completions",
        WireFormat.OPENAI_CHAT,
        "accounts/fireworks/models/gpt-oss-120b",
    ),
    Target("anthropic", "https://api.anthropic.com/v1", "/messages", WireFormat.ANTHROPIC_MESSAGES, "claude-haiku-4-5"),
]


@dataclass
class SleepLog:
    """Records the waits the retry loop asks for, without waiting (the simulator's 429 says 1 s)."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with running_simulator(latency_ms=0) as base_url:
        yield base_url


@pytest.fixture(params=TARGETS, ids=lambda t: t.provider)
def target(request: pytest.FixtureRequest) -> Target:
    result: Target = request.param
    return result


@pytest.fixture(params=["httpx", "lean"])
async def http(request: pytest.FixtureRequest, simulator: str) -> AsyncIterator[httpx.AsyncClient]:
    """Both transports pass the same contract: httpx's own and our lean one.

    The simulator's fail-times counters are reset first, so each transport meets the same faults.
    """
    transport = LeanTransport() if request.param == "lean" else None
    async with httpx.AsyncClient(trust_env=False, transport=transport) as client:
        await client.delete(f"{simulator}/_sim/faults")
        yield client


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()


@pytest.fixture
def policy(sleeps: SleepLog) -> RetryPolicy:
    return RetryPolicy(
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
        deadline_s=10.0,
        max_retries=2,
        retry_after_cap_s=10.0,
        backoff_base_s=0.01,
        sleep=sleeps,
    )


def build(
    target: Target,
    simulator: str,
    text: str,
    *,
    api_key: str = "sim-key",
    model: str | None = None,
    url: str | None = None,
    **extra: Any,
) -> UpstreamRequest:
    body = {
        "model": f"slug@{target.provider}",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}],
        **extra,
    }
    return adapter_for(target.wire).build(
        url=route_via(url or target.url, simulator), api_key=api_key, upstream_model=model or target.model, body=body
    )


async def call(
    http: httpx.AsyncClient, target: Target, request: UpstreamRequest, policy: RetryPolicy
) -> UpstreamResult:
    return await send(http, adapter_for(target.wire), request, policy=policy)


async def test_returns_the_completion(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    result = await call(http, target, build(target, simulator, "Say hello."), policy)
    choice = result.completion.choices[0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert result.completion.upstream_model == target.model
    assert result.completion.upstream_id
    assert result.attempts == 1


async def test_usage_is_read_and_deterministic(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    first = await call(http, target, build(target, simulator, "Say hello."), policy)
    second = await call(http, target, build(target, simulator, "Say hello."), policy)
    prompt = (math.ceil(len("You are terse.") / 4) + 4) + (math.ceil(len("Say hello.") / 4) + 4)
    assert first.completion.input_tokens == prompt
    assert first.completion.output_tokens == max(1, math.floor(output_ratio(target.model) * prompt))
    assert (second.completion.input_tokens, second.completion.output_tokens) == (
        first.completion.input_tokens,
        first.completion.output_tokens,
    )


async def test_forced_tool_comes_back_as_tool_calls(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
    request = build(target, simulator, "Find it.", tools=[tool], tool_choice="required")
    result = await call(http, target, request, policy)
    assert result.completion.finish_reason == "tool_calls"
    call_ = result.completion.choices[0]["message"]["tool_calls"][0]
    assert json.loads(call_["function"]["arguments"]) == {"q": "sim"}


async def test_bad_key_is_auth_failed(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    with pytest.raises(UpstreamAuthFailed) as caught:
        await call(http, target, build(target, simulator, "Hi", api_key="invalid"), policy)
    assert caught.value.upstream_status == 401
    assert "invalid" not in caught.value.message


async def test_rate_limit_honours_retry_after_then_succeeds(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy, sleeps: SleepLog
) -> None:
    text = f"Hi {target.provider} [sim:fail=429] [sim:fail-times=1] [sim:retry-after=3]"
    result = await call(http, target, build(target, simulator, text), policy)
    assert result.attempts == 2
    assert sleeps.waits == [3.0]


async def test_server_error_is_retried_then_succeeds(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy, sleeps: SleepLog
) -> None:
    text = f"Hi {target.provider} [sim:fail=503] [sim:fail-times=2]"
    result = await call(http, target, build(target, simulator, text), policy)
    assert result.attempts == 3
    assert len(sleeps.waits) == 2


async def test_persistent_server_error_gives_up(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    with pytest.raises(UpstreamServerError) as caught:
        await call(http, target, build(target, simulator, "Hi [sim:fail=500]"), replace(policy, max_retries=1))
    assert caught.value.upstream_status == 500


async def test_malformed_body_is_upstream_malformed(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    with pytest.raises(UpstreamMalformed):
        await call(http, target, build(target, simulator, "Hi [sim:malformed]"), policy)


async def test_truncated_body_is_upstream_malformed(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    with pytest.raises(UpstreamMalformed):
        await call(http, target, build(target, simulator, "Hi [sim:truncated]"), policy)


async def test_hang_times_out_without_retry(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    marker = f"hang-{target.provider}"
    before = await _stats(http, simulator)
    with pytest.raises(UpstreamTimeout):
        await call(http, target, build(target, simulator, f"{marker} [sim:hang]"), replace(policy, read_timeout_s=0.3))
    after = await _stats(http, simulator)
    assert after["total"] - before["total"] == 1  # read timeouts are not retried


async def test_slow_drip_hits_the_overall_deadline(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    # Each byte arrives well within the read timeout; only the overall deadline can stop it.
    slow = replace(policy, read_timeout_s=2.0, deadline_s=0.8)
    with pytest.raises(UpstreamTimeout) as caught:
        await call(http, target, build(target, simulator, "Hi [sim:drip=100]"), slow)
    assert "deadline" in caught.value.message


async def test_wrong_model_name_is_model_not_found(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    with pytest.raises(UpstreamModelNotFound) as caught:
        await call(http, target, build(target, simulator, "Hi", model=f"{target.model}-nope"), policy)
    assert caught.value.code == MODEL_NOT_FOUND_CODE
    assert caught.value.upstream_status == 404


async def test_wrong_path_is_path_not_found(
    http: httpx.AsyncClient, simulator: str, target: Target, policy: RetryPolicy
) -> None:
    parts = urlsplit(target.url)
    doubled = f"{parts.scheme}://{parts.netloc}/v1{parts.path}"  # e.g. https://api.anthropic.com/v1/v1/messages
    with pytest.raises(UpstreamMisconfigured) as caught:
        await call(http, target, build(target, simulator, "Hi", url=doubled), policy)
    assert caught.value.code == PATH_NOT_FOUND_CODE
    assert caught.value.upstream_status == 404


async def _stats(http: httpx.AsyncClient, simulator: str) -> dict[str, Any]:
    response = await http.get(f"{simulator}/_sim/stats")
    result: dict[str, Any] = response.json()
    return result
