"""From a validated chat request to the models to try, in order: the one place both the worker
(before calling) and `POST /v1/routing/explain` (instead of calling) decide.

A pinned slug is one candidate, checked against the catalog and the tenant's policy.
`ainfera-auto` runs the router; its ranked survivors are the fallback order, already
stripped of anything the policy bans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.catalog.types import Catalog, Model
from shared.chat.request import AUTO_MODELS, ChatCompletionRequest, upstream_body
from shared.errors import InvalidRequest, ModelInactive, ModelNotFound
from shared.providers.call import has_credential
from shared.providers.params import feature_param, needed_features, unservable
from shared.routing.candidates import Candidate, RouterConfig, RouteRequest, RoutingStats
from shared.routing.candidates import evaluate as evaluate_candidate
from shared.routing.policy import TenantPolicy
from shared.routing.router import RULESET, Decision, route
from shared.routing.tokens import estimate_input_tokens
from shared.settings import Settings


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Candidate, ...]  # what to try, in order (one for a pinned slug)
    decision_log: dict[str, Any]
    auto: bool

    @property
    def chosen(self) -> Candidate:
        return self.candidates[0]


def router_config(settings: Settings) -> RouterConfig:
    return RouterConfig(
        default_ratio=settings.default_output_ratio,
        default_max_cost_usd=settings.default_max_cost_per_call_usd,
        latency_quality_cap=settings.latency_quality_cap,
        preferred_quality_margin=settings.preferred_quality_margin,
        default_ttft_ms=settings.default_ttft_ms,
        fast_tier_ttft_ms=settings.fast_tier_ttft_ms,
        default_output_tokens_per_s=settings.default_output_tokens_per_s,
    )


def callable_providers(settings: Settings, catalog: Catalog) -> frozenset[str]:
    """Providers this deployment can call: it has their key, or it points at the simulator."""
    return frozenset(p.name for p in catalog.providers.values() if has_credential(settings, p))


def _has_images(messages: Any) -> bool:
    for m in messages:
        content = m.get("content")
        if isinstance(content, list) and any(p.get("type") in ("image_url", "input_image") for p in content):
            return True
    return False


def route_request(request: ChatCompletionRequest, *, spend_cap_usd: float | None = None,
                  spend_cap_source: str | None = None) -> RouteRequest:
    """The facts the router decides on. Tokens are estimated on the request as it is sent."""
    body = upstream_body(request)
    hint = request.routing_hint
    return RouteRequest(
        spend_cap_usd=spend_cap_usd,
        spend_cap_source=spend_cap_source,
        input_tokens=estimate_input_tokens(body["messages"], body.get("tools")),
        output_cap=request.output_cap,
        needs_tools=bool(request.tools),
        needs_vision=_has_images(body["messages"]),
        max_cost_usd=hint.max_cost_usd if hint else None,
        stack=hint.stack if hint else None,
        latency_budget_ms=hint.latency_budget_ms if hint else None,
        reasoning_effort=request.reasoning_effort,
        needs=frozenset(needed_features(body)),
    )


def pinned_model(catalog: Catalog, slug: str) -> Model:
    """The model a caller named, if it can take traffic; the errors say why not."""
    model = catalog.models.get(slug)
    if model is None:
        raise ModelNotFound(f"The model '{slug}' does not exist.", param="model")
    if not catalog.servable(model):
        reason = model.deactivation_reason or "its provider is deactivated"
        raise ModelInactive(f"The model '{slug}' is currently deactivated ({reason}).", param="model")
    return model


def check_servable(catalog: Catalog, model: Model, needs: frozenset[str]) -> None:
    """Refuse a pinned model that cannot serve a feature the request needs (n > 1, logprobs, audio,
    structured output, PDF or audio input): 400 naming the field and the model, before any
    provider is called."""
    provider = catalog.providers[model.provider]
    for feature, why in unservable(model, provider, needs).items():
        raise InvalidRequest(f"'{model.slug}' cannot serve {feature!r}: {why}. Use a model that can, or "
                             "ainfera-auto, which only routes to such models.", code="unsupported_parameter",
                             param=feature_param(feature))


def plan_request(
    request: ChatCompletionRequest,
    catalog: Catalog,
    *,
    policy: TenantPolicy,
    stats: RoutingStats,
    settings: Settings,
    spend_cap_usd: float | None = None,
    spend_cap_source: str | None = None,
) -> Plan:
    """`spend_cap_usd`: the most this call may cost at worst (`shared.spend`); ainfera-auto routes
    only to models whose worst case fits it."""
    req = route_request(request, spend_cap_usd=spend_cap_usd, spend_cap_source=spend_cap_source)
    config = router_config(settings)
    slug = request.model
    if slug in AUTO_MODELS:
        decision: Decision = route(
            req, catalog, policy=policy, stats=stats, config=config,
            callable_providers=callable_providers(settings, catalog),
        )
        return Plan(decision.ranked[: 1 + settings.max_fallbacks], decision.log, auto=True)
    model = pinned_model(catalog, slug)
    policy.check_pinned(model)
    check_servable(catalog, model, req.needs)
    cand = evaluate_candidate(model, catalog.providers[model.provider], req, stats, config)
    log = {"ruleset": RULESET, "pinned": True, "chosen": slug, "reason": "the request names this model",
           "top": [cand.summary()]}
    return Plan((cand,), log, auto=False)
