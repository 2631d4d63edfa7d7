"""The one module that sends upstream calls: per-attempt timeouts, retries, an overall deadline.

httpx errors are translated into our errors here and nowhere else. Adapters build and
parse; this module only moves bytes and decides whether to try again.

Latency is measured here too. When the simulated provider stands in (an upstream
override is set), it answers on a compressed clock and says how much world time it
skipped; the reported latency adds that back, so what the router learns is the simulated
world's time (see `shared/simulator/profiles.py`). Real providers send no such header,
and it is never read from them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource, SSEError

from shared.errors import (
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamMalformed,
    UpstreamMisconfigured,
    UpstreamRateLimited,
    UpstreamResponseTooLarge,
    UpstreamStreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from shared.logging import get_logger
from shared.providers.fastpath import LeanTransport
from shared.providers.stream import StreamTarget
from shared.providers.types import Completion, UpstreamRequest, WireAdapter
from shared.settings import Settings
from shared.simulator.profiles import SKIPPED_HEADER

log = get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeouts, retry rules and the size limit of an answer for one upstream call, built once
    from Settings.

    `sleep`, `jitter` (a number in [0, 1)) and `clock` are injectable so tests can
    run the retry loop without waiting.
    """

    connect_timeout_s: float
    read_timeout_s: float
    deadline_s: float
    max_retries: int
    retry_after_cap_s: float
    backoff_base_s: float
    max_response_bytes: int = 32 * 1024 * 1024  # a longer answer is refused, never buffered whole
    simulated_clock: bool = False  # add back the world time the simulated provider skipped
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, sleep: Sleep = asyncio.sleep) -> RetryPolicy:
        return cls(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            read_timeout_s=settings.upstream_read_timeout_s,
            deadline_s=settings.upstream_deadline_s,
            max_retries=settings.upstream_max_retries,
            retry_after_cap_s=settings.upstream_retry_after_cap_s,
            backoff_base_s=settings.upstream_backoff_base_s,
            max_response_bytes=settings.upstream_max_response_bytes,
            simulated_clock=settings.upstream_override is not None,
            sleep=sleep,
        )

    @property
    def attempt_timeout(self) -> httpx.Timeout:
        """Connect and read limits per attempt; only the deadline bounds a wait for a pooled connection."""
        return httpx.Timeout(
            connect=self.connect_timeout_s, read=self.read_timeout_s, write=self.read_timeout_s, pool=None
        )

    def backoff_s(self, retry: int) -> float:
        """Exponential backoff with jitter before retry number `retry` (1-based), in [d/2, d)."""
        delay = min(self.backoff_base_s * 2.0 ** (retry - 1), self.retry_after_cap_s)
        return delay * (0.5 + 0.5 * self.jitter())


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """A completion and how it was obtained: attempts made, the answering attempt's latency (in the
    simulated world's time when the simulator stands in), total time."""

    completion: Completion
    attempts: int
    latency_ms: float
    elapsed_ms: float
    dropped: tuple[str, ...] = ()  # request fields this provider was not sent (`shared/providers/params.py`)


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """The process's shared client: HTTP/1.1 keep-alive pool, no redirects, no proxy variables read.

    Timeouts are set per attempt by `send`; the client default matches them so a
    caller that bypasses `send` still gets the configured limits. The wire work is done by
    our lean HTTP/1.1 transport unless `upstream_transport` asks for httpx's own.
    """
    transport = (LeanTransport(max_connections_per_host=settings.upstream_max_connections,
                               keepalive_expiry_s=settings.upstream_keepalive_expiry_s)
                 if settings.upstream_transport == "lean" else None)
    return httpx.AsyncClient(
        transport=transport,
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
            keepalive_expiry=settings.upstream_keepalive_expiry_s,
        ),
        timeout=RetryPolicy.from_settings(settings).attempt_timeout,
        follow_redirects=False,
        trust_env=False,
    )


async def send(
    http: httpx.AsyncClient, adapter: WireAdapter, request: UpstreamRequest, *, policy: RetryPolicy,
    stream: StreamTarget | None = None,
) -> UpstreamResult:
    """Send `request`, retrying what is safe to retry, within the policy's overall deadline.

    Retried: rate limits (after Retry-After, capped), server errors and connection
    failures (exponential backoff with jitter), at most `max_retries` times. Not retried:
    read timeouts (the provider may have done the work) and every other error.
    Raises the last attempt's `UpstreamError`, or `UpstreamTimeout` when the deadline passes.

    With `stream`, a 2xx answer is read as server-sent events and each piece handed to the
    target's sink as it arrives; once a piece has been handed on, nothing is retried (the caller
    has seen it) and a failure is `UpstreamStreamBroken`.
    """
    started = policy.clock()
    host = urlsplit(request.url).netloc
    attempts = 0
    try:
        async with asyncio.timeout(policy.deadline_s):
            while True:
                attempts += 1
                attempt_started = policy.clock()
                try:
                    completion, skipped_ms = await _attempt(http, adapter, request, policy, stream)
                except UpstreamError as error:
                    wait = _retry_wait(
                        error, attempts, policy, remaining=policy.deadline_s - (policy.clock() - started)
                    )
                    if wait is None:
                        error.attempts = attempts
                        raise
                    log.info(
                        "upstream_retry",
                        host=host,
                        attempt=attempts,
                        code=error.code,
                        upstream_status=error.upstream_status,
                        wait_s=round(wait, 3),
                    )
                    await policy.sleep(wait)
                    continue
                now = policy.clock()
                return UpstreamResult(
                    completion=completion,
                    attempts=attempts,
                    latency_ms=(now - attempt_started) * 1000.0 + skipped_ms,
                    elapsed_ms=(now - started) * 1000.0,
                )
    except TimeoutError:
        timeout = UpstreamTimeout(
            f"no complete answer within the overall deadline of {policy.deadline_s:g} s "
            f"({attempts} attempt{'s' if attempts != 1 else ''})"
        )
        timeout.attempts = attempts
        raise timeout from None


def _retry_wait(error: UpstreamError, attempts: int, policy: RetryPolicy, *, remaining: float) -> float | None:
    """Seconds to wait before the next attempt, or None to give up and raise `error`."""
    if not error.retryable or attempts > policy.max_retries:
        return None
    backoff = policy.backoff_s(attempts)
    if error.retry_after_s is not None:
        if isinstance(error, UpstreamRateLimited) and error.retry_after_s > remaining:
            return None  # the provider will not take it before our deadline; let the caller decide
        wait = min(max(error.retry_after_s, 0.0), policy.retry_after_cap_s)
    else:
        wait = backoff
    return None if wait >= remaining else wait


async def _attempt(
    http: httpx.AsyncClient, adapter: WireAdapter, request: UpstreamRequest, policy: RetryPolicy,
    stream: StreamTarget | None = None,
) -> tuple[Completion, float]:
    """One POST, its body read in full (up to the policy's size limit), parsed by the adapter; also
    the world time the simulated provider skipped (0 from anyone else). httpx errors become ours here."""
    try:
        upstream = http.build_request(
            "POST",
            request.url,
            headers=dict(request.headers),
            content=request.body,
            timeout=policy.attempt_timeout,
        )
    except httpx.InvalidURL:
        raise UpstreamMisconfigured("the upstream URL is not valid") from None
    try:
        response = await http.send(upstream, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise UpstreamUnreachable(f"could not connect to the provider ({type(exc).__name__})") from None
    except httpx.WriteError:
        raise UpstreamUnreachable("the connection failed while sending the request") from None
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamTimeout(f"provider did not answer in time ({type(exc).__name__})") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        # The request was sent, then the connection broke before a status line: the provider may
        # have done the work, so this is not retried (pooled connections are checked before reuse).
        raise UpstreamConnectionLost(
            f"provider closed the connection after the request was sent ({type(exc).__name__})") from None
    except httpx.UnsupportedProtocol:
        raise UpstreamMisconfigured("the upstream URL has an unsupported scheme") from None
    skipped = _skipped_ms(response.headers) if policy.simulated_clock else 0.0
    streaming = stream is not None and 200 <= response.status_code < 300
    try:
        try:
            if streaming:
                assert stream is not None
                return await _read_stream(response, adapter, stream, policy.max_response_bytes), skipped
            content = await _read_capped(response, policy.max_response_bytes)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"provider stopped sending the body ({type(exc).__name__})", upstream_status=response.status_code
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError, SSEError) as exc:
            raise UpstreamMalformed(
                f"provider body was cut off or unreadable ({type(exc).__name__})",
                upstream_status=response.status_code,
            ) from None
        finally:
            await response.aclose()
    except UpstreamError as error:
        if streaming and stream is not None and stream.relayed:
            raise UpstreamStreamBroken(f"the provider's stream broke off after part of the answer: {error.message}",
                                       upstream_status=error.upstream_status) from None
        raise
    return adapter.parse(response.status_code, response.headers, content), skipped


async def _read_stream(response: httpx.Response, adapter: WireAdapter, target: StreamTarget, limit: int) -> Completion:
    """A streamed answer, each event's chunk choices handed to the target's sink as they come."""
    reader = adapter.stream_reader(input_tokens_estimate=target.input_tokens_estimate)
    target.reader = reader
    response.stream = _CappedStream(response, limit)
    async for event in EventSource(response).aiter_sse():
        choices = reader.event(event.event, event.data)
        if choices:
            await target.hand_on(choices)
    return reader.completion()


class _CappedStream(httpx.AsyncByteStream):
    """A response body that raises `UpstreamResponseTooLarge` past `limit` bytes, so no event, and no
    line of one, can grow without bound."""

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self._inner, self._response, self._limit = response.stream, response, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        assert isinstance(self._inner, httpx.AsyncByteStream)
        async for piece in self._inner:
            size += len(piece)
            if size > self._limit:
                raise _too_large(self._response, self._limit)
            yield piece

    async def aclose(self) -> None:
        assert isinstance(self._inner, httpx.AsyncByteStream)
        await self._inner.aclose()


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, decoded, as it arrives; `UpstreamResponseTooLarge` once it, or its declared length,
    passes `limit` bytes. It never holds more than `limit` plus the piece just read (the transport
    hands on at most 64 KiB at a time; httpx decodes a compressed piece whole before it is counted)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(response, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_large(response, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(response: httpx.Response, limit: int) -> UpstreamResponseTooLarge:
    return UpstreamResponseTooLarge(f"provider answer is larger than the {limit:,}-byte limit",
                                    upstream_status=response.status_code)


def _skipped_ms(headers: httpx.Headers) -> float:
    try:
        return max(0.0, float(headers.get(SKIPPED_HEADER, 0)))
    except ValueError:
        return 0.0
