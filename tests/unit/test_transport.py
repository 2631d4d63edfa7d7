"""The transport's retry loop, timeouts and error translation, against httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson
import pytest

from shared.errors import (
    UpstreamAuthFailed,
    UpstreamMalformed,
    UpstreamRateLimited,
    UpstreamResponseTooLarge,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.transport import RetryPolicy, UpstreamResult, create_http_client, send
from shared.providers.types import UpstreamRequest
from shared.settings import Settings

ADAPTER = OpenAIChatAdapter()
REQUEST = ADAPTER.build(
    url="https://api.groq.com/openai/v1/chat/completions",
    api_key="gsk-secret",
    upstream_model="llama-3.3-70b-versatile",
    body={"model": "slug", "messages": [{"role": "user", "content": "Hi"}]},
)
OK_BODY = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "model": "llama-3.3-70b-versatile",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
)

Reply = httpx.Response | Exception


@dataclass
class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(clock: Clock, **overrides: Any) -> RetryPolicy:
    base = RetryPolicy(
        connect_timeout_s=1.0,
        read_timeout_s=1.0,
        deadline_s=120.0,
        max_retries=2,
        retry_after_cap_s=10.0,
        backoff_base_s=0.25,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
        clock=clock,
    )
    return replace(base, **overrides)


class Upstream:
    """A scripted provider: answers (or raises) in order and records what it was sent."""

    def __init__(self, *replies: Reply | Callable[[httpx.Request], Any]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = await reply(request)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok() -> httpx.Response:
    return httpx.Response(200, content=OK_BODY)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def run(upstream: Upstream, retry: RetryPolicy, request: UpstreamRequest = REQUEST) -> UpstreamResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as http:
        return await send(http, ADAPTER, request, policy=retry)


async def test_success_on_first_attempt_sends_the_built_request(clock: Clock) -> None:
    upstream = Upstream(ok())
    result = await run(upstream, policy(clock))
    assert result.attempts == 1
    assert result.completion.output_tokens == 1
    assert clock.sleeps == []
    sent = upstream.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == REQUEST.url
    assert sent.headers["authorization"] == "Bearer gsk-secret"
    assert sent.content == REQUEST.body


async def test_rate_limit_waits_retry_after_then_succeeds(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "2"}), ok())
    result = await run(upstream, policy(clock))
    assert result.attempts == 2
    assert clock.sleeps == [2.0]


async def test_retry_after_is_capped(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "30"}), ok())
    result = await run(upstream, policy(clock, retry_after_cap_s=10.0))
    assert result.attempts == 2
    assert clock.sleeps == [10.0]


async def test_retry_after_beyond_the_deadline_gives_up_at_once(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(429, headers={"Retry-After": "600"}), ok())
    with pytest.raises(UpstreamRateLimited) as caught:
        await run(upstream, policy(clock, deadline_s=60.0))
    assert caught.value.retry_after_s == 600.0
    assert len(upstream.requests) == 1
    assert clock.sleeps == []


async def test_rate_limit_without_retry_after_backs_off(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(429), ok())
    await run(upstream, policy(clock))
    assert clock.sleeps == [0.25]


async def test_server_errors_back_off_exponentially_with_jitter(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(503), httpx.Response(500), ok())
    result = await run(upstream, policy(clock, jitter=lambda: 0.0))
    assert result.attempts == 3
    assert clock.sleeps == [0.125, 0.25]  # base x 2^n, jitter in [half, full)


async def test_gives_up_after_max_retries(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(500))
    with pytest.raises(UpstreamServerError):
        await run(upstream, policy(clock, max_retries=2))
    assert len(upstream.requests) == 3
    assert clock.sleeps == [0.25, 0.5]


async def test_zero_max_retries_means_one_attempt(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(503))
    with pytest.raises(UpstreamServerError):
        await run(upstream, policy(clock, max_retries=0))
    assert len(upstream.requests) == 1


async def test_backoff_that_would_overrun_the_deadline_is_not_waited(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(503))
    with pytest.raises(UpstreamServerError):
        await run(upstream, policy(clock, backoff_base_s=5.0, deadline_s=4.0))
    assert clock.sleeps == []


async def test_connection_failures_are_retried_as_unreachable(clock: Clock) -> None:
    upstream = Upstream(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok())
    result = await run(upstream, policy(clock))
    assert result.attempts == 3
    upstream = Upstream(httpx.ConnectError("refused"))
    with pytest.raises(UpstreamUnreachable):
        await run(upstream, policy(clock))
    assert len(upstream.requests) == 3


async def test_read_timeout_is_not_retried(clock: Clock) -> None:
    upstream = Upstream(httpx.ReadTimeout("no answer"), ok())
    with pytest.raises(UpstreamTimeout):
        await run(upstream, policy(clock))
    assert len(upstream.requests) == 1


async def test_client_errors_are_not_retried(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(401, json={"error": {"message": "bad key"}}), ok())
    with pytest.raises(UpstreamAuthFailed):
        await run(upstream, policy(clock))
    assert len(upstream.requests) == 1


class _CutOffStream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield OK_BODY[:10]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


async def test_body_cut_off_is_malformed_and_not_retried(clock: Clock) -> None:
    upstream = Upstream(httpx.Response(200, stream=_CutOffStream()), ok())
    with pytest.raises(UpstreamMalformed):
        await run(upstream, policy(clock))
    assert len(upstream.requests) == 1


async def test_overall_deadline_stops_a_provider_that_never_finishes(clock: Clock) -> None:
    never = asyncio.Event()

    async def stall(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return ok()

    with pytest.raises(UpstreamTimeout) as caught:
        await run(Upstream(stall), policy(clock, deadline_s=0.05))
    assert "deadline" in caught.value.message


async def test_errors_never_mention_the_key(clock: Clock) -> None:
    for reply in (httpx.ConnectError("refused"), httpx.ReadTimeout("t"), httpx.Response(401), httpx.Response(500)):
        with pytest.raises(Exception) as caught:
            await run(Upstream(reply), policy(clock, max_retries=0))
        assert "gsk-secret" not in str(caught.value)


def test_policy_comes_from_settings() -> None:
    settings = Settings(
        upstream_connect_timeout_s=2.0,
        upstream_read_timeout_s=30.0,
        upstream_deadline_s=90.0,
        upstream_max_retries=4,
        upstream_retry_after_cap_s=8.0,
        upstream_backoff_base_s=0.5,
        upstream_max_response_bytes=1000,
    )
    retry = RetryPolicy.from_settings(settings)
    assert (retry.connect_timeout_s, retry.read_timeout_s, retry.deadline_s) == (2.0, 30.0, 90.0)
    assert (retry.max_retries, retry.retry_after_cap_s, retry.backoff_base_s) == (4, 8.0, 0.5)
    assert retry.max_response_bytes == 1000
    assert RetryPolicy.from_settings(Settings()).max_response_bytes == 32 * 1024 * 1024
    assert retry.attempt_timeout.connect == 2.0
    assert retry.attempt_timeout.read == 30.0


async def test_shared_client_uses_configured_timeouts_and_no_redirects() -> None:
    settings = Settings(upstream_connect_timeout_s=3.0, upstream_read_timeout_s=20.0, upstream_max_connections=7)
    async with create_http_client(settings) as http:
        assert http.timeout.connect == 3.0
        assert http.timeout.read == 20.0
        assert http.follow_redirects is False


async def test_a_write_failure_is_retried_as_unreachable(clock: Clock) -> None:
    # Not all of the request reached the provider, so it cannot be working on it: safe to send again.
    upstream = Upstream(httpx.WriteError("connection lost while sending"), ok())
    result = await run(upstream, policy(clock))
    assert result.attempts == 2


class _Endless(httpx.AsyncByteStream):
    """A body that never ends, in 1 KiB pieces; counts how many were read."""

    def __init__(self) -> None:
        self.pieces = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.pieces += 1
            yield b"x" * 1024


async def test_an_answer_longer_than_the_limit_is_refused_without_reading_the_rest(clock: Clock) -> None:
    body = _Endless()
    upstream = Upstream(httpx.Response(200, stream=body), ok())
    with pytest.raises(UpstreamResponseTooLarge) as caught:
        await run(upstream, policy(clock, max_response_bytes=10 * 1024))
    assert body.pieces == 11  # one piece past the limit, then no more
    assert caught.value.upstream_status == 200
    assert isinstance(caught.value, UpstreamMalformed) and not caught.value.retryable
    assert len(upstream.requests) == 1


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(clock: Clock) -> None:
    body = _Endless()
    upstream = Upstream(httpx.Response(200, headers={"Content-Length": str(64 * 1024 * 1024)}, stream=body))
    with pytest.raises(UpstreamResponseTooLarge):
        await run(upstream, policy(clock, max_response_bytes=1024 * 1024))
    assert body.pieces == 0


async def test_an_answer_of_exactly_the_limit_is_read(clock: Clock) -> None:
    result = await run(Upstream(ok()), policy(clock, max_response_bytes=len(OK_BODY)))
    assert result.completion.output_tokens == 1
