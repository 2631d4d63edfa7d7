"""`ainfera-auto`: a pure, deterministic choice of model for a request.

route() is a function of (request, catalog snapshot, output-ratio snapshot, tenant
policy, default cap) and nothing else: no I/O, no clock, no randomness, so the same
inputs always give the same decision and golden tests can pin it. Every filter step
is recorded in a decision log with its survivors and the top three of them, and an
empty candidate set is an error that names the step that emptied it.

Ruleset ainfera-auto/1.0: among servable models whose estimated cost fits the per-call
cap, the highest aa_index wins, ties go to the cheaper, then to the slug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.catalog.types import Catalog, Model
from shared.errors import NoEligibleModel
from shared.routing.cost import estimate_cost, expected_output_tokens

RULESET = "ainfera-auto/1.0"
TOP_N = 3


@dataclass(frozen=True, slots=True)
class RouteRequest:
    input_tokens: int
    output_cap: int | None = None
    needs_tools: bool = False
    max_cost_usd: float | None = None  # the request's routing_hint.max_cost_usd


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    max_cost_per_call_usd: float | None = None

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> TenantPolicy:
        data = data or {}
        cap = data.get("max_cost_per_call_usd")
        return TenantPolicy(max_cost_per_call_usd=float(cap) if cap is not None else None)


@dataclass(frozen=True, slots=True)
class Candidate:
    model: Model
    provider_name: str
    expected_output_tokens: int
    estimated_cost_usd: float | None

    def summary(self) -> dict[str, Any]:
        return {
            "slug": self.model.slug,
            "provider": self.provider_name,
            "aa_index": self.model.aa_index,
            "estimated_cost_usd": _cost_text(self.estimated_cost_usd),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: Candidate
    ranked: tuple[Candidate, ...]  # every survivor, best first: the fallback order
    log: dict[str, Any] = field(default_factory=dict)


def _cost_text(v: float | None) -> str | None:
    """Costs go into logs (and audit payloads) as decimal strings: no float formatting drift."""
    return None if v is None else format(round(v, 10), ".10f").rstrip("0").rstrip(".") or "0"


def _rank_key(c: Candidate) -> tuple[float, float, str]:
    aa = c.model.aa_index if c.model.aa_index is not None else -1.0
    cost = c.estimated_cost_usd if c.estimated_cost_usd is not None else float("inf")
    return (-aa, cost, c.model.slug)


Step = tuple[str, Callable[[Candidate], bool]]


def route(
    req: RouteRequest,
    catalog: Catalog,
    *,
    policy: TenantPolicy | None = None,
    callable_providers: frozenset[str] | None = None,
    output_ratios: Mapping[str, float] | None = None,
    default_ratio: float = 0.5,
    default_max_cost_usd: float = 0.10,
) -> Decision:
    policy = policy or TenantPolicy()
    ratios = output_ratios or {}
    if req.max_cost_usd is not None:
        cap, cap_source = req.max_cost_usd, "routing_hint.max_cost_usd"
    elif policy.max_cost_per_call_usd is not None:
        cap, cap_source = policy.max_cost_per_call_usd, "spend_policy.max_cost_per_call_usd"
    else:
        cap, cap_source = default_max_cost_usd, "default"

    candidates: list[Candidate] = []
    for model in catalog.models.values():
        out = expected_output_tokens(req.input_tokens, ratios.get(model.slug, default_ratio), req.output_cap)
        candidates.append(
            Candidate(model, model.provider, out, estimate_cost(model, req.input_tokens, out))
        )
    candidates.sort(key=_rank_key)

    steps: Sequence[Step] = (
        (
            "active",
            lambda c: catalog.servable(c.model)
            and (callable_providers is None or c.model.provider in callable_providers),
        ),
        ("budget", lambda c: c.estimated_cost_usd is not None and c.estimated_cost_usd <= cap),
    )
    log: dict[str, Any] = {
        "ruleset": RULESET,
        "input_tokens_estimate": req.input_tokens,
        "max_cost_usd": _cost_text(cap),
        "max_cost_source": cap_source,
        "steps": [],
    }
    survivors = candidates
    for name, keep in steps:
        before = len(survivors)
        survivors = [c for c in survivors if keep(c)]
        log["steps"].append(
            {"step": name, "survivors": len(survivors), "top": [c.summary() for c in survivors[:TOP_N]]}
        )
        if not survivors:
            log["chosen"] = None
            log["reason"] = f"step '{name}' removed the last {before} candidates"
            raise NoEligibleModel(_empty_message(name, before, cap, cap_source))

    chosen = survivors[0]
    log["steps"].append({"step": "rank", "survivors": len(survivors), "top": [c.summary() for c in survivors[:TOP_N]]})
    log["chosen"] = chosen.model.slug
    log["reason"] = (
        f"highest aa_index ({chosen.model.aa_index}) among {len(survivors)} models within the "
        f"${cap:g} per-call budget; ties go to the cheaper, then the slug"
    )
    return Decision(chosen=chosen, ranked=tuple(survivors), log=log)


def _empty_message(step: str, before: int, cap: float, cap_source: str) -> str:
    if step == "budget":
        return (
            f"ainfera-auto found no model: the budget step removed the last {before} candidates "
            f"(estimated cost above the ${cap:g} per-call cap from {cap_source}). Raise the cap or shorten "
            "the request."
        )
    return f"ainfera-auto found no model: the {step} step removed the last {before} candidates."
