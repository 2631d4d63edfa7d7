"""`POST /v1/inference`: Ainfera's own inference call (the `ainfera` SDK's `agent.inference`), a
thin translation onto the chat-completions path: the same validation, submit, queue, worker,
router, receipt and `inference.routed` audit event; only the body and the answer's shape differ
(`shared/ainfera_api/inference.py`). Errors on this route have Ainfera's flat shape (`gateway/errors.py`).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Owner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.idempotency import Binder, canonical_body, idempotent, sync_job_resume
from gateway.rate_limits import check_rate_limits, with_headers
from gateway.responses import JSONResponse
from gateway.routes.chat import check_model, outcome_headers
from gateway.submit import submit_and_wait
from shared.ainfera_api.errors import model_unavailable
from shared.ainfera_api.inference import chat_body, failed_object, inference_object
from shared.auth.key_access import check_model_allowed
from shared.chat.request import validate_chat_request
from shared.errors import ModelInactive, ModelNotFound
from shared.ids import job_id as new_job_id
from shared.jobs import DispatchJob, JobKind, Outcome
from shared.routing.policy import TenantPolicy

router = APIRouter()


def inference_response(outcome: Outcome) -> JSONResponse:
    """A finished job as the flat inference answer or Ainfera's flat error, with our `x-ainfera-*` headers."""
    headers = outcome_headers(outcome)
    if outcome.http_status != 200:
        status, body = failed_object(outcome)
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(inference_object(outcome), headers=headers)


@router.post("/v1/inference")
async def create_inference(request: Request, owner: Owner) -> Response:
    st = gateway_state(request)
    data = await read_json(request, st.res.settings.max_request_bytes)

    async def handle(binder: Binder) -> Response:
        policy = TenantPolicy.from_json(owner.tenant.spend_policy)
        catalog = st.res.catalog.current
        req = validate_chat_request(chat_body(data, owner.key_id), strict=policy.strict_params)
        check_model_allowed(owner.settings, req.model)
        try:
            check_model(catalog, req, policy)
        except (ModelNotFound, ModelInactive) as e:
            raise model_unavailable(catalog, req.model, e.message) from e
        limited = await check_rate_limits(st, owner, policy, req)
        job = DispatchJob(job_id=new_job_id(), tenant_id=owner.tenant.id, kind=JobKind.SYNC, request=req,
                          submitted_at=st.res.clock(), key_id=owner.key_id, key_limits=owner.settings.limits)
        return with_headers(inference_response(await submit_and_wait(st, job, binder=binder)), limited)

    resume = sync_job_resume(st, lambda _jid, done: inference_response(done))

    return await idempotent(request, st, owner.tenant.id, canonical_body(data), handle, resume=resume)
