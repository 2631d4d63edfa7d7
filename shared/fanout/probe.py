"""One probe: a minimal request to one model, through the same URL building, upstream-name
resolution, adapter and transport as real traffic (`shared.providers.call`), classified into
passed / failed (with a reason) / skipped. Probes bill no tenant and teach the router nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from shared.catalog.types import Catalog, Model
from shared.errors import (
    AinferaError,
    UpstreamAuthFailed,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamMalformed,
    UpstreamMisconfigured,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from shared.providers.call import call_model, has_credential, provider_url
from shared.providers.classify import PATH_NOT_FOUND_CODE
from shared.settings import Settings

PROBE_PROMPT = "Reply with the single word: pong"
PROBE_MAX_TOKENS = 8
PROBE_INPUT_TOKENS = 16  # what the cost estimate assumes for the prompt above


class ProbeOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # with a reason naming what is wrong with the row (or the provider)
    SKIPPED = "skipped"  # says nothing about the row: no credentials here, or rate limited


@dataclass(frozen=True, slots=True)
class ProbeResult:
    slug: str
    provider: str
    outcome: ProbeOutcome
    reason: str | None
    status_code: int | None
    error_code: str | None
    latency_ms: int | None
    upstream_model: str
    upstream_url: str

    def row(self, run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "model_slug": self.slug, "provider": self.provider, "outcome": self.outcome,
                "status_code": self.status_code, "error_code": self.error_code, "reason": self.reason,
                "latency_ms": self.latency_ms, "upstream_model": self.upstream_model,
                "upstream_url": self.upstream_url}


def probe_body(model: Model) -> dict[str, Any]:
    return {"model": model.slug, "messages": [{"role": "user", "content": PROBE_PROMPT}],
            "max_tokens": PROBE_MAX_TOKENS}


def estimated_probe_cost(model: Model) -> float:
    if not model.priced:
        return 0.0
    assert model.input_usd_per_mtok is not None and model.output_usd_per_mtok is not None
    return (PROBE_INPUT_TOKENS * model.input_usd_per_mtok + PROBE_MAX_TOKENS * model.output_usd_per_mtok) / 1e6


def reason_for(error: AinferaError) -> tuple[ProbeOutcome, str]:
    """(outcome, reason) for a failed call. Rate limits say nothing about the row: skipped."""
    if isinstance(error, UpstreamRateLimited):
        return ProbeOutcome.SKIPPED, "rate_limited"
    if isinstance(error, UpstreamModelNotFound):
        return ProbeOutcome.FAILED, "model_not_found"
    if error.code == PATH_NOT_FOUND_CODE:
        return ProbeOutcome.FAILED, "http_404_path"
    table: list[tuple[type[AinferaError], str]] = [
        (UpstreamMisconfigured, "invalid_upstream_url"),
        (UpstreamAuthFailed, "auth_failed"),
        (UpstreamTimeout, "timeout"),
        (UpstreamUnreachable, "unreachable"),
        (UpstreamServerError, "server_error"),
        (UpstreamConnectionLost, "connection_lost"),
        (UpstreamMalformed, "malformed_response"),
        (UpstreamRejected, "rejected_request"),
    ]
    for cls, reason in table:
        if isinstance(error, cls):
            return ProbeOutcome.FAILED, reason
    return ProbeOutcome.FAILED, error.code


async def run_probe(http: httpx.AsyncClient, settings: Settings, catalog: Catalog, slug: str) -> ProbeResult:
    model = catalog.models[slug]
    provider = catalog.providers[model.provider]
    try:
        url = provider_url(provider)
    except UpstreamMisconfigured as e:
        return ProbeResult(slug, provider.name, ProbeOutcome.FAILED, "invalid_upstream_url", None, e.code, None,
                           model.upstream_model, f"{provider.base_url} + {provider.chat_completions_path or ''}")
    if not has_credential(settings, provider):
        return ProbeResult(slug, provider.name, ProbeOutcome.SKIPPED, "no_credentials", None, None, None,
                           model.upstream_model, url)
    started = time.monotonic()
    try:
        result = await call_model(http, settings, model, provider, probe_body(model),
                                  deadline_s=settings.fanout_probe_timeout_s, max_retries=1)
    except UpstreamError as e:
        outcome, reason = reason_for(e)
        return ProbeResult(slug, provider.name, outcome, reason, e.upstream_status, e.code,
                           int((time.monotonic() - started) * 1000), model.upstream_model,
                           url)
    return ProbeResult(slug, provider.name, ProbeOutcome.PASSED, None, 200, None, round(result.latency_ms),
                       model.upstream_model, url)
