"""Error classification, once per wire format, and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.errors import (
    UnsupportedByModel,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamMalformed,
    UpstreamMisconfigured,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
)
from shared.providers.anthropic_messages import AnthropicMessagesAdapter
from shared.providers.classify import UpstreamFault, classify, scrub
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.retry_after import parse_duration, parse_retry_after, retry_after_seconds

OPENAI = OpenAIChatAdapter()
ANTHROPIC = AnthropicMessagesAdapter()


def openai_error(message: str, code: str | None = None, kind: str = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def anthropic_error(kind: str, message: str, **extra: Any) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message, **extra}})


def classify_with(adapter: Any, status: int, content: bytes, headers: dict[str, str] | None = None) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        adapter.parse(status, headers or {}, content)
    return caught.value


@pytest.mark.parametrize(
    ("status", "content", "expected", "code"),
    [
        (
            401,
            openai_error("Incorrect API key provided: gsk_abc***xyz", "invalid_api_key"),
            UpstreamAuthFailed,
            "upstream_auth_failed",
        ),
        (403, openai_error("Forbidden"), UpstreamAuthFailed, "upstream_auth_failed"),
        (
            404,
            openai_error("The model `x` does not exist or you do not have access to it.", "model_not_found"),
            UpstreamModelNotFound,
            "upstream_model_not_found",
        ),
        (
            404,
            openai_error("Model not found, inaccessible, and/or not deployed"),
            UpstreamModelNotFound,
            "upstream_model_not_found",
        ),
        (400, openai_error("Model Not Exist"), UpstreamModelNotFound, "upstream_model_not_found"),
        (
            400,
            openai_error("Invalid model: mistral-huge", kind="invalid_model"),
            UpstreamModelNotFound,
            "upstream_model_not_found",
        ),
        (
            404,
            openai_error("Invalid URL (POST /v1/v1/chat/completions)", "unknown_url"),
            UpstreamMisconfigured,
            "upstream_path_not_found",
        ),
        (404, b"404 page not found", UpstreamMisconfigured, "upstream_path_not_found"),
        (
            429,
            openai_error("Rate limit reached", "rate_limit_exceeded", "requests"),
            UpstreamRateLimited,
            "upstream_rate_limited",
        ),
        (
            429,
            openai_error("You exceeded your current quota", "insufficient_quota"),
            UpstreamError,
            "upstream_quota_exhausted",
        ),
        (
            500,
            openai_error("The server had an error", kind="server_error"),
            UpstreamServerError,
            "upstream_server_error",
        ),
        (502, b"<html>Bad Gateway</html>", UpstreamServerError, "upstream_server_error"),
        (503, b"", UpstreamServerError, "upstream_server_error"),
        (408, b"", UpstreamServerError, "upstream_server_error"),
        (
            400,
            openai_error("'messages' must contain at least one message"),
            UpstreamRejected,
            "upstream_rejected_request",
        ),
        (422, orjson.dumps({"detail": "bad temperature"}), UpstreamRejected, "upstream_rejected_request"),
        (302, b"", UpstreamMalformed, "upstream_malformed_response"),
    ],
)
def test_openai_error_classification(status: int, content: bytes, expected: type[UpstreamError], code: str) -> None:
    error = classify_with(OPENAI, status, content)
    assert type(error) is expected
    assert error.code == code
    assert error.upstream_status == status


@pytest.mark.parametrize(
    ("status", "content", "expected", "code"),
    [
        (401, anthropic_error("authentication_error", "invalid x-api-key"), UpstreamAuthFailed, "upstream_auth_failed"),
        (403, anthropic_error("permission_error", "no access"), UpstreamAuthFailed, "upstream_auth_failed"),
        (404, anthropic_error("not_found_error", "model: claude-9"), UpstreamModelNotFound, "upstream_model_not_found"),
        (404, anthropic_error("not_found_error", "Not Found"), UpstreamMisconfigured, "upstream_path_not_found"),
        (429, anthropic_error("rate_limit_error", "slow down"), UpstreamRateLimited, "upstream_rate_limited"),
        (
            429,
            anthropic_error("rate_limit_error", "spend", details={"error_code": "enforced_spend_limit_reached"}),
            UpstreamError,
            "upstream_quota_exhausted",
        ),
        (500, anthropic_error("api_error", "Internal server error"), UpstreamServerError, "upstream_server_error"),
        (529, anthropic_error("overloaded_error", "Overloaded"), UpstreamServerError, "upstream_server_error"),
        (
            400,
            anthropic_error("invalid_request_error", "max_tokens: Field required"),
            UpstreamRejected,
            "upstream_rejected_request",
        ),
        (413, anthropic_error("request_too_large", "too big"), UpstreamRejected, "upstream_rejected_request"),
    ],
)
def test_anthropic_error_classification(status: int, content: bytes, expected: type[UpstreamError], code: str) -> None:
    error = classify_with(ANTHROPIC, status, content)
    assert type(error) is expected
    assert error.code == code


def test_only_transient_failures_are_retryable() -> None:
    assert classify_with(OPENAI, 429, b"").retryable
    assert classify_with(OPENAI, 503, b"").retryable
    for status in (400, 401, 404):
        assert not classify_with(OPENAI, status, b"").retryable
    assert not classify_with(OPENAI, 429, openai_error("quota", "insufficient_quota")).retryable


def test_rate_limit_carries_retry_after() -> None:
    error = classify_with(OPENAI, 429, openai_error("slow"), {"Retry-After": "7"})
    assert error.retry_after_s == 7.0
    error = classify_with(ANTHROPIC, 429, anthropic_error("rate_limit_error", "slow"), {"retry-after": "3"})
    assert error.retry_after_s == 3.0
    assert classify_with(OPENAI, 429, b"").retry_after_s is None


def test_auth_errors_never_repeat_the_upstream_text() -> None:
    error = classify_with(
        OPENAI, 401, openai_error("Incorrect API key provided: sk-proj-abcdef123456", "invalid_api_key")
    )
    assert "sk-proj" not in error.message
    assert "abcdef" not in error.message


def test_rejections_carry_a_short_scrubbed_upstream_message() -> None:
    text = "Bad request for key sk-live-0123456789abcdef: " + "x" * 500
    error = classify_with(OPENAI, 400, openai_error(text))
    assert "sk-live" not in error.message
    assert "Bad request" in error.message
    assert len(error.message) < 300


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Incorrect API key provided: sk-abc***xyz. See docs.", "Incorrect API key provided: [redacted] See docs."),
        ("header was Bearer abc.def.ghi", "header was Bearer [redacted]"),
        ("token " + "A1b2" * 10 + " leaked", "token [redacted] leaked"),
        (
            "The model `accounts/fireworks/models/qwen3-235b-a22b-instruct-2507` does not exist",
            "The model `accounts/fireworks/models/qwen3-235b-a22b-instruct-2507` does not exist",
        ),
        ("multi\n  line\ttext", "multi line text"),
    ],
)
def test_scrub_removes_credentials_but_keeps_model_names(raw: str, clean: str) -> None:
    assert scrub(raw) == clean


NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "Thu, 26 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"Retry-After": "Thu, 26 Nov 2026 11:59:00 GMT"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        (
            {
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "2m59.5s",
                "x-ratelimit-remaining-requests": "10",
                "x-ratelimit-reset-requests": "1s",
            },
            179.5,
        ),
        ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "20ms"}, None),
        ({}, None),
    ],
)
def test_retry_after_sources(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers, now=NOW) == seconds


def test_retry_after_values_and_durations() -> None:
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3s") == 3723.0
    assert parse_duration("6 minutes") is None


@pytest.mark.parametrize(("status", "code", "message"), [
    (400, "unsupported_parameter",
     "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."),
    (400, "unsupported_value",
     "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported."),
    (400, None, "`temperature` and `top_p` cannot both be specified for this model. Please use only one."),
    (403, None, "You are not allowed to request logprobs from this model"),
])
def test_a_refused_parameter_is_unsupported_by_the_model_so_another_may_be_tried(status, code, message):
    error = classify(status, {}, UpstreamFault(message, code))
    assert isinstance(error, UnsupportedByModel) and error.code == "unsupported_parameter"


def test_a_plain_rejection_is_not_taken_for_an_unsupported_parameter():
    assert not isinstance(classify(400, {}, UpstreamFault("messages: field required", None)), UnsupportedByModel)
    assert not isinstance(classify(403, {}, UpstreamFault("forbidden", None)), UnsupportedByModel)
