"""`POST /v1/chat/completions`: validate at the edge, enqueue, wait, answer in OpenAI's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.openapi import chat_request_body
from gateway.responses import JSONResponse
from gateway.submit import submit_and_wait
from shared.catalog.types import Catalog
from shared.chat.request import ChatCompletionRequest, validate_chat_request
from shared.dispatch import Outcome
from shared.errors import InvalidRequest
from shared.ids import job_id as new_job_id
from shared.routing.plan import pinned_model
from shared.routing.policy import TenantPolicy

router = APIRouter()


def check_model(catalog: Catalog, req: ChatCompletionRequest, policy: TenantPolicy) -> None:
    """Refuse before enqueueing what can never run: unknown, inactive or banned slugs, impossible max_tokens."""
    if req.is_auto:
        return
    model = pinned_model(catalog, req.model)
    policy.check_pinned(model)
    cap = req.output_cap
    if cap is not None and model.max_output_tokens is not None and cap > model.max_output_tokens:
        param = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        raise InvalidRequest(
            f"{param} is {cap}, but '{model.slug}' produces at most {model.max_output_tokens} tokens.",
            code="invalid_value",
            param=param,
        )


def outcome_response(outcome: Outcome) -> JSONResponse:
    meta = outcome.meta
    headers: dict[str, str] = {}
    for header, key in (
        ("x-ainfera-job-id", "job_id"),
        ("x-ainfera-receipt-id", "receipt_id"),
        ("x-ainfera-cost-usd", "cost_usd"),
    ):
        if meta.get(key) is not None:
            headers[header] = str(meta[key])
    if outcome.body.get("model"):
        headers["x-ainfera-model"] = str(outcome.body["model"])
    return JSONResponse(outcome.body, status_code=outcome.http_status, headers=headers)


@router.post("/v1/chat/completions", openapi_extra=chat_request_body())
async def create_chat_completion(request: Request) -> JSONResponse:
    st = gateway_state(request)
    owner = await authenticate(request)
    data = await read_json(request, st.res.settings.max_request_bytes)
    req = validate_chat_request(data)
    check_model(st.res.catalog.current, req, TenantPolicy.from_json(owner.tenant.spend_policy))
    body: dict[str, Any] = req.model_dump(exclude_unset=True, mode="json")
    outcome = await submit_and_wait(
        st, tenant_id=owner.tenant.id, job_id=new_job_id(), request=body, submitted_at=st.res.clock()
    )
    return outcome_response(outcome)
