"""`POST /v1/routing/explain`: the decision a chat completion would get, without calling anyone.

It takes the same body as `POST /v1/chat/completions` and runs the same planning code
as the worker (`shared.routing.plan`), with the same catalog, statistics and policy.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.openapi import chat_request_body
from gateway.responses import JSONResponse
from shared.chat.request import validate_chat_request
from shared.routing.candidates import cost_text
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy

router = APIRouter()


@router.post("/v1/routing/explain", openapi_extra=chat_request_body())
async def explain_routing(request: Request) -> JSONResponse:
    st = gateway_state(request)
    owner = await authenticate(request)
    req = validate_chat_request(await read_json(request, st.res.settings.max_request_bytes))
    body: dict[str, Any] = req.model_dump(exclude_unset=True, mode="json")
    plan = plan_request(
        body,
        st.res.catalog.current,
        policy=TenantPolicy.from_json(owner.tenant.spend_policy),
        stats=st.res.stats.current,
        settings=st.res.settings,
    )
    chosen = plan.chosen
    return JSONResponse({
        "object": "routing.decision",
        "requested_model": req.model,
        "model": chosen.model.slug,
        "provider": chosen.provider.name,
        "estimated_cost_usd": cost_text(chosen.estimated_cost_usd),
        "expected_output_tokens": chosen.expected_output_tokens,
        "expected_latency_ms": round(chosen.expected_latency_ms),
        "reasoning_effort": chosen.reasoning_effort,  # set when ainfera-auto would choose one
        "fallbacks": [c.model.slug for c in plan.candidates[1:]],
        "decision_log": plan.decision_log,
    })
