"""Rate-limit headers and refusals as OpenAI writes them, and which limits apply to a call."""

from __future__ import annotations

import uuid

import pytest

from gateway.rate_limits import ratelimit_headers, refusal
from shared.rate_limits import (
    DEFAULT_OUTPUT_TOKENS,
    Admission,
    Lane,
    Limit,
    LimitState,
    Scope,
    Unit,
    duration,
    estimated_tokens,
    limits_for,
)
from shared.routing.limits import RateLimits

TENANT, KEY = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-3, "0s"), (0.0004, "1ms"), (0.012, "12ms"), (0.999, "999ms"), (1, "1s"), (1.5, "1.5s"),
    (17.142, "17.142s"), (59.9999, "1m0s"), (60, "1m0s"), (90.25, "1m30.25s"), (360, "6m0s"), (3600, "1h0m0s"),
])
def test_reset_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_no_limits_means_nothing_to_check() -> None:
    assert limits_for(TENANT, RateLimits(), KEY, RateLimits()) == []
    # Batch limits alone never hold interactive calls, and the other way round.
    assert limits_for(TENANT, RateLimits(batch_requests_per_minute=5), KEY, RateLimits()) == []
    assert limits_for(TENANT, RateLimits(requests_per_minute=5), None, RateLimits(), Lane.BATCH) == []


def test_tenant_and_key_limits_both_apply_in_separate_buckets() -> None:
    found = limits_for(TENANT, RateLimits(requests_per_minute=100, tokens_per_minute=1000), KEY,
                       RateLimits(requests_per_minute=10))
    assert [(x.scope, x.unit, x.per_minute) for x in found] == [
        (Scope.TENANT, Unit.REQUESTS, 100), (Scope.TENANT, Unit.TOKENS, 1000), (Scope.KEY, Unit.REQUESTS, 10)]
    assert len({x.redis_key for x in found}) == 3
    batch = limits_for(TENANT, RateLimits(requests_per_minute=100, batch_requests_per_minute=100), None,
                       RateLimits(), Lane.BATCH)
    assert batch[0].redis_key != found[0].redis_key


def test_tokens_count_the_input_and_the_output_cap() -> None:
    assert estimated_tokens(20, 100) == 120
    assert estimated_tokens(20, None) == 20 + DEFAULT_OUTPUT_TOKENS


def test_headers_report_the_tightest_limit_of_each_unit() -> None:
    tenant_rpm = Limit(Scope.TENANT, Unit.REQUESTS, 100, TENANT)
    key_rpm = Limit(Scope.KEY, Unit.REQUESTS, 10, KEY)
    tenant_tpm = Limit(Scope.TENANT, Unit.TOKENS, 5000, TENANT)
    headers = ratelimit_headers((LimitState(tenant_rpm, 90, 6.0), LimitState(key_rpm, 2, 48.0),
                                 LimitState(tenant_tpm, 4000, 12.0)))
    assert headers == {
        "x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "48s",
        "x-ratelimit-limit-tokens": "5000", "x-ratelimit-remaining-tokens": "4000", "x-ratelimit-reset-tokens": "12s",
    }


def test_a_refusal_names_the_limit_and_when_to_retry() -> None:
    key_tpm = Limit(Scope.KEY, Unit.TOKENS, 1000, KEY)
    err = refusal(Admission((LimitState(key_tpm, 10, 59.0),), refused=key_tpm, retry_after_s=2.2, requested=300),
                  {"x-ratelimit-limit-tokens": "1000"})
    assert err.status == 429
    assert err.envelope()["error"]["type"] == "tokens" and err.envelope()["error"]["code"] == "rate_limit_exceeded"
    assert "this API key" in err.message and "tokens per minute" in err.message and "2.2s" in err.message
    assert err.headers()["retry-after"] == "3"


def test_a_request_larger_than_the_limit_says_so_without_a_retry_after() -> None:
    tenant_tpm = Limit(Scope.TENANT, Unit.TOKENS, 1000, TENANT)
    err = refusal(Admission((LimitState(tenant_tpm, 1000, 0.0),), refused=tenant_tpm, requested=10**6), {})
    assert "Request too large for this tenant" in err.message and "Requested 1000000" in err.message
    assert "retry-after" not in err.headers()
