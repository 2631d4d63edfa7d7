"""The dispatch use-case: one job from its request to its receipt and audit event.

`run_dispatch(res, job)` picks the model (pinned slug or `ainfera-auto`), calls the
provider through its wire-format adapter, and writes the job outcome, the receipt and
the audit event in one transaction. It is idempotent on the job id: a job that runs
twice (arq delivers at least once) leaves one receipt, one event and one charge.
It knows nothing of arq or HTTP frameworks, so tests call it directly.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from shared.audit.chain import canonical_json
from shared.audit.writer import event_payload_parts
from shared.catalog.types import Catalog, Model, Provider
from shared.catalog.urls import chat_url, route_via
from shared.chat.request import AUTO_MODELS
from shared.db.jobs import JobRow, finish_dispatch, job_outcome
from shared.errors import AinferaError, ModelInactive, ModelNotFound, ProviderNotConfigured, UpstreamError
from shared.ids import receipt_id as new_receipt_id
from shared.logging import get_logger
from shared.providers.registry import adapter_for
from shared.providers.transport import RetryPolicy, send
from shared.providers.types import Completion
from shared.receipts.types import Receipt, ReceiptStatus, money
from shared.resources import Resources
from shared.routing.cost import actual_cost, estimate_cost, expected_output_tokens
from shared.routing.router import Decision, RouteRequest, TenantPolicy, route
from shared.routing.tokens import estimate_input_tokens

log = get_logger(__name__)

# The key sent to the simulated provider when a deployment has none for a provider.
SIMULATOR_KEY = "sk-simulated"


@dataclass(frozen=True, slots=True)
class DispatchJob:
    job_id: str
    tenant_id: UUID
    kind: str  # sync | async | batch | probe
    request: dict[str, Any]  # a validated chat-completions body
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the caller gets: an HTTP status and the JSON body (completion or error envelope)."""

    http_status: int
    body: dict[str, Any]
    replayed: bool = False  # True when the job had already finished (a second delivery)

    @property
    def meta(self) -> dict[str, Any]:
        block: dict[str, Any] = self.body.get("ainfera") or {}
        return block

    def to_message(self) -> bytes:
        """The completion notice a worker publishes to the waiting gateway."""
        return orjson.dumps({"status": self.http_status, "body": self.body})

    @staticmethod
    def from_message(raw: bytes) -> Outcome:
        message = orjson.loads(raw)
        return Outcome(http_status=int(message["status"]), body=message["body"])


@dataclass(slots=True)
class _Attempt:
    """What we know about the call so far; becomes the receipt and the audit event."""

    model: Model | None = None
    provider: Provider | None = None
    decision: Decision | None = None
    estimated_cost_usd: float | None = None
    completion: Completion | None = None
    attempts: int = 0
    upstream_latency_ms: int | None = None
    error: AinferaError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def run_dispatch(res: Resources, job: DispatchJob, *, job_try: int = 1) -> Outcome:
    if job_try > 1:
        async with res.db.acquire() as conn:
            done = await job_outcome(conn, job.job_id)
        if done is not None and done.response is not None:
            return _replay(done)

    started = time.monotonic()
    attempt = _Attempt()
    try:
        await _select_and_call(res, job, attempt)
    except AinferaError as e:
        attempt.error = e
        if isinstance(e, UpstreamError):
            attempt.attempts = e.attempts
    latency_ms = int((time.monotonic() - started) * 1000)
    return await _finish(res, job, attempt, latency_ms)


async def _select_and_call(res: Resources, job: DispatchJob, attempt: _Attempt) -> None:
    catalog = res.catalog.current
    request = job.request
    requested = str(request["model"])
    input_tokens = estimate_input_tokens(request["messages"], request.get("tools"))
    output_cap = request.get("max_completion_tokens") or request.get("max_tokens")
    settings = res.settings

    if requested in AUTO_MODELS:
        tenant = await res.tenants.tenant(job.tenant_id)
        hint = request.get("routing_hint") or {}
        decision = route(
            RouteRequest(
                input_tokens=input_tokens,
                output_cap=output_cap,
                needs_tools=bool(request.get("tools")),
                max_cost_usd=hint.get("max_cost_usd"),
            ),
            catalog,
            policy=TenantPolicy.from_json(tenant.spend_policy if tenant else None),
            callable_providers=callable_providers(res, catalog),
            default_ratio=settings.default_output_ratio,
            default_max_cost_usd=settings.default_max_cost_per_call_usd,
        )
        attempt.decision = decision
        model = decision.chosen.model
        attempt.estimated_cost_usd = decision.chosen.estimated_cost_usd
    else:
        model = pinned_model(catalog, requested)
        out = expected_output_tokens(input_tokens, settings.default_output_ratio, output_cap)
        attempt.estimated_cost_usd = estimate_cost(model, input_tokens, out)

    provider = catalog.provider_of(model)
    attempt.model, attempt.provider = model, provider
    api_key = provider_credential(res, provider)
    url = route_via(chat_url(provider.base_url, provider.chat_completions_path, provider.wire_format),
                    settings.upstream_override)
    adapter = adapter_for(provider.wire_format)
    body = {k: v for k, v in request.items() if k != "routing_hint"}
    upstream = adapter.build(url=url, api_key=api_key, upstream_model=model.upstream_model, body=body)
    result = await send(res.http, adapter, upstream, policy=RetryPolicy.from_settings(settings))
    attempt.completion = result.completion
    attempt.attempts = result.attempts
    attempt.upstream_latency_ms = round(result.latency_ms)


def pinned_model(catalog: Catalog, slug: str) -> Model:
    """The model a caller named, if it can take traffic; the errors say why not."""
    model = catalog.models.get(slug)
    if model is None:
        raise ModelNotFound(f"The model '{slug}' does not exist.", param="model")
    if not catalog.servable(model):
        reason = model.deactivation_reason or "its provider is deactivated"
        raise ModelInactive(f"The model '{slug}' is currently deactivated ({reason}).", param="model")
    return model


def callable_providers(res: Resources, catalog: Catalog) -> frozenset[str]:
    """Providers this deployment can call: it has their key, or it points at the simulator."""
    if res.settings.upstream_override:
        return frozenset(catalog.providers)
    return frozenset(p.name for p in catalog.providers.values() if res.settings.provider_key(p.api_key_env))


def provider_credential(res: Resources, provider: Provider) -> str:
    key = res.settings.provider_key(provider.api_key_env)
    if key:
        return key
    if res.settings.upstream_override:
        return SIMULATOR_KEY
    raise ProviderNotConfigured(
        f"Provider '{provider.name}' has no credentials configured in this deployment "
        f"(set {provider.api_key_env})."
    )


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


async def _finish(res: Resources, job: DispatchJob, a: _Attempt, latency_ms: int) -> Outcome:
    now = res.clock()
    rid = new_receipt_id()
    model, provider, completion = a.model, a.provider, a.completion
    requested = str(job.request["model"])
    succeeded = a.error is None and completion is not None and model is not None
    cost = actual_cost(model, completion.input_tokens, completion.output_tokens) if (
        succeeded and model is not None and completion is not None
    ) else Decimal(0)
    estimated = Decimal(str(round(a.estimated_cost_usd, 10))) if a.estimated_cost_usd is not None else None
    routing = {"decision_log": a.decision.log} if a.decision else None

    meta: dict[str, Any] = {
        "job_id": job.job_id,
        "receipt_id": rid,
        "requested_model": requested,
        "provider": provider.name if provider else None,
        "cost_usd": money(cost),
        "estimated_cost_usd": money(estimated) if estimated is not None else None,
    }
    if succeeded:
        assert completion is not None and model is not None
        status = 200
        body: dict[str, Any] = {
            "id": "chatcmpl-" + job.job_id.removeprefix("job_"),
            "object": "chat.completion",
            "created": int(now.timestamp()),
            "model": model.slug,
            "choices": completion.choices,
            "usage": {
                "prompt_tokens": completion.input_tokens,
                "completion_tokens": completion.output_tokens,
                "total_tokens": completion.input_tokens + completion.output_tokens,
            },
            "ainfera": meta,
        }
        if a.decision:
            meta["decision_log"] = a.decision.log
    else:
        err = a.error
        assert err is not None
        status = err.status
        body = {**err.envelope(), "ainfera": meta}

    receipt = Receipt(
        id=rid,
        job_id=job.job_id,
        tenant_id=job.tenant_id,
        status=ReceiptStatus.SUCCEEDED if succeeded else ReceiptStatus.FAILED,
        requested_model=requested,
        model_slug=model.slug if model else None,
        provider=provider.name if provider else None,
        upstream_model=model.upstream_model if model else None,
        input_tokens=completion.input_tokens if completion else 0,
        output_tokens=completion.output_tokens if completion else 0,
        estimated_cost_usd=estimated,
        cost_usd=cost,
        latency_ms=latency_ms,
        upstream_latency_ms=a.upstream_latency_ms,
        attempts=a.attempts,
        error_code=a.error.code if a.error else None,
        routing=routing,
        created_at=now,
    )
    event_fields: dict[str, Any] = {
        "receipt_id": rid,
        "status": receipt.status.value,
        "requested_model": requested,
        "model": receipt.model_slug,
        "provider": receipt.provider,
        "upstream_model": receipt.upstream_model,
        "usage": {"input_tokens": receipt.input_tokens, "output_tokens": receipt.output_tokens},
        "cost_usd": money(cost),
        "estimated_cost_usd": money(estimated) if estimated is not None else None,
        "latency_ms": latency_ms,
        "attempts": a.attempts,
        "prompt_sha256": _sha256(job.request["messages"]),
        "response_sha256": _sha256(completion.choices) if completion else None,
    }
    if a.decision:
        event_fields["decision_log"] = a.decision.log
    if a.error:
        event_fields["error"] = {"code": a.error.code, "message": a.error.message}

    event_type = "inference.routed" if succeeded else "inference.failed"
    prefix, suffix = event_payload_parts(
        tenant_id=job.tenant_id,
        event_type=event_type,
        fields=event_fields,
        now=now,
        job_id=job.job_id,
    )
    job_row = {
        "id": job.job_id,
        "tenant_id": str(job.tenant_id),
        "kind": job.kind,
        "status": "succeeded" if succeeded else "failed",
        "requested_model": requested,
        "response": body,
        "http_status": status,
        "receipt_id": rid,
        "created_at": job.submitted_at.isoformat(),
        "finished_at": now.isoformat(),
    }
    async with res.db.acquire() as conn:
        first = await finish_dispatch(
            conn,
            job=job_row,
            receipt=receipt.row(),
            event_type=event_type,
            prefix=prefix,
            suffix=suffix,
        )
    if not first:
        async with res.db.acquire() as conn:
            done = await job_outcome(conn, job.job_id)
        assert done is not None
        return _replay(done)
    log.info(
        "job_finished",
        job_id=job.job_id,
        status=receipt.status.value,
        model=receipt.model_slug,
        provider=receipt.provider,
        error_code=receipt.error_code,
        latency_ms=latency_ms,
        attempts=a.attempts,
    )
    return Outcome(http_status=status, body=body)


def _replay(done: JobRow) -> Outcome:
    assert done.response is not None
    return Outcome(http_status=done.http_status or 200, body=done.response, replayed=True)
