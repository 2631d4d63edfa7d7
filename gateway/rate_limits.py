"""Rate limits at the chat and messages routes: admit a call against its tenant's and its key's
limits (`shared/rate_limits.py`), and say where it stands in OpenAI's `x-ratelimit-*` headers, on
the answer or on the 429 that refuses it (with `Retry-After`). Nothing here runs, and Redis is
not asked, when neither the tenant nor the key has a rate limit."""

from __future__ import annotations

import math

from redis.exceptions import RedisError
from starlette.responses import Response

from gateway.deps import GatewayState
from shared.chat.request import ChatCompletionRequest
from shared.db.tenants import KeyOwner
from shared.errors import RateLimited, ServiceUnavailable
from shared.logging import get_logger
from shared.rate_limits import (
    Admission,
    Lane,
    LimitState,
    Scope,
    Unit,
    admit,
    duration,
    estimated_tokens,
    limits_for,
)
from shared.routing.plan import route_request
from shared.routing.policy import TenantPolicy

log = get_logger(__name__)

_UNIT_NAMES = {Unit.REQUESTS: "requests per minute (RPM)", Unit.TOKENS: "tokens per minute (TPM)"}
_SCOPE_NAMES = {Scope.TENANT: "this tenant", Scope.KEY: "this API key"}


async def check_rate_limits(st: GatewayState, owner: KeyOwner, policy: TenantPolicy,
                            req: ChatCompletionRequest) -> dict[str, str]:
    """Take this call from every interactive limit that applies; the headers to answer with (empty when
    no limit applies). A 429 (`RateLimited`) when one has no room, a 503 when Redis cannot say:
    the limiter fails closed, as the queue behind it would."""
    limits = limits_for(owner.tenant.id, policy.limits.rate_limits, owner.key_id, owner.settings.limits.rate_limits)
    if not limits:
        return {}
    tokens = 0
    if any(lim.unit is Unit.TOKENS for lim in limits):
        tokens = estimated_tokens(route_request(req).input_tokens, req.output_cap)
    try:
        admission = await admit(st.res.redis, limits, tokens)
    except (RedisError, OSError) as e:
        log.warning("rate_limiter_unavailable", error=type(e).__name__)
        raise ServiceUnavailable("The rate limiter is unavailable; retry shortly.") from e
    headers = ratelimit_headers(admission.states)
    if admission.refused is not None:
        st.res.metrics.rate_limited.labels(Lane.INTERACTIVE, admission.refused.scope, admission.refused.unit).inc()
        raise refusal(admission, headers)
    return headers


def with_headers(response: Response, headers: dict[str, str]) -> Response:
    """`response` with the rate-limit headers of the call it answers."""
    response.headers.update(headers)
    return response


def ratelimit_headers(states: tuple[LimitState, ...]) -> dict[str, str]:
    """OpenAI's headers, per unit for the tightest limit of that unit (the one with the least left)."""
    headers: dict[str, str] = {}
    for unit in Unit:
        of_unit = [s for s in states if s.limit.unit is unit]
        if not of_unit:
            continue
        tightest = min(of_unit, key=lambda s: (s.remaining, -s.reset_s))
        headers[f"x-ratelimit-limit-{unit}"] = str(tightest.limit.per_minute)
        headers[f"x-ratelimit-remaining-{unit}"] = str(tightest.remaining)
        headers[f"x-ratelimit-reset-{unit}"] = duration(tightest.reset_s)
    return headers


def refusal(admission: Admission, headers: dict[str, str]) -> RateLimited:
    """The 429 for a refused call: which limit, what it holds, and when to try again."""
    limit = admission.refused
    assert limit is not None
    what = f"Rate limit reached for {_SCOPE_NAMES[limit.scope]} on {_UNIT_NAMES[limit.unit]}"
    if admission.retry_after_s <= 0:  # asks more than the limit holds at all: waiting cannot help
        return RateLimited(f"Request too large for {_SCOPE_NAMES[limit.scope]} on {_UNIT_NAMES[limit.unit]}: "
                           f"Limit {limit.per_minute}, Requested {admission.requested}. Lower max_tokens or "
                           "max_completion_tokens, or shorten the input.", unit=limit.unit, headers=headers)
    wait = duration(admission.retry_after_s)
    return RateLimited(f"{what}: Limit {limit.per_minute}, Requested {admission.requested}. "
                       f"Please try again in {wait}.", unit=limit.unit,
                       headers={**headers, "retry-after": str(max(1, math.ceil(admission.retry_after_s)))})
