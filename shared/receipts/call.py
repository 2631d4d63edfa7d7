"""What happened to one job's call, filled in as it goes, and what it is charged.

The dispatch use-case fills a `CallRecord`; the response body (`response.py`), the receipt
(`build.py`) and the audit event's fields (`shared/audit/fields.py`) are each derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.chat.request import ChatCompletionRequest
from shared.errors import AinferaError
from shared.providers.types import Completion
from shared.routing.candidates import Candidate
from shared.routing.cost import actual_cost
from shared.routing.plan import Plan
from shared.spend.leases import LeaseHold


@dataclass(slots=True)
class CallRecord:
    plan: Plan | None = None
    served: Candidate | None = None  # the candidate that answered (or the last one tried)
    completion: Completion | None = None
    attempts: int = 0  # HTTP requests sent upstream, over every candidate
    upstream_latency_ms: int | None = None
    error: AinferaError | None = None
    fallbacks: list[dict[str, Any]] = field(default_factory=list)  # candidates that failed before
    cancelled: bool = False  # the caller left a streamed call (`error` says so too)
    relayed_chunks: int = 0  # of a streamed call: chunks the caller was sent before it ended
    dropped: tuple[str, ...] = ()  # request fields the answering provider was not sent
    lease: LeaseHold | None = None  # the worst case it holds from its worker's budget lease

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.completion is not None and self.served is not None

    @property
    def decision_log(self) -> dict[str, Any] | None:
        """ainfera-auto's explanation; None for a pinned slug."""
        return self.plan.decision_log if self.plan and self.plan.auto else None


@dataclass(frozen=True, slots=True)
class Charge:
    cost_usd: Decimal  # what the tenant pays: the provider's counted tokens at catalog prices
    estimated_usd: Decimal | None  # what the router expected, for the chosen (or tried) candidate


def charge_of(call: CallRecord) -> Charge:
    served, completion = call.served, call.completion
    # A streamed call that stopped part way (the caller left, the provider broke off) keeps the
    # partial answer in `completion`: what was generated was paid for upstream, so it is billed.
    billable = call.succeeded or (completion is not None and completion.streamed)
    cost = (actual_cost(served.model, completion.tokens())
            if billable and served is not None and completion is not None else Decimal(0))
    priced = served or (call.plan.chosen if call.plan else None)
    estimate = priced.estimated_cost_usd if priced else None
    return Charge(cost, Decimal(str(round(estimate, 10))) if estimate is not None else None)


def sent_effort(call: CallRecord, request: ChatCompletionRequest | None) -> str | None:
    """The reasoning effort the call carried: the caller's own, else the one ainfera-auto chose."""
    if request is not None and request.reasoning_effort is not None:
        return request.reasoning_effort
    return call.served.reasoning_effort if call.served is not None else None
