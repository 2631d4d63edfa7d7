"""`POST /v1/chat/completions`: validate at the edge, then wait for the answer (synchronous) or,
with `Prefer: respond-async`, store the job and answer 202 at once."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Owner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.idempotency import Binder, WorkState, canonical_body, idempotent
from gateway.objects.jobs import job_object
from gateway.openapi import chat_request_body
from gateway.rate_limits import check_rate_limits, with_headers
from gateway.responses import JSONResponse
from gateway.streaming import replayed_stream, submit_streaming
from gateway.submit import submit_and_wait
from shared.auth.key_access import check_model_allowed
from shared.catalog.types import Catalog
from shared.chat.request import ChatCompletionRequest, validate_chat_request
from shared.db.jobs import job_outcome
from shared.db.types import Connection
from shared.errors import InvalidRequest
from shared.ids import job_id as new_job_id
from shared.job_queue import submit_async
from shared.jobs import DISPATCH, DispatchJob, JobKind, Outcome
from shared.queue.enqueue import job_known
from shared.routing.plan import check_servable, pinned_model, route_request
from shared.routing.policy import TenantPolicy

router = APIRouter()


def check_model(catalog: Catalog, req: ChatCompletionRequest, policy: TenantPolicy) -> None:
    """Refuse before enqueueing what can never run: unknown, inactive or banned slugs, impossible max_tokens."""
    if req.is_auto:
        return
    model = pinned_model(catalog, req.model)
    policy.check_pinned(model)
    check_servable(catalog, model, route_request(req).needs)
    cap = req.output_cap
    if cap is not None and model.max_output_tokens is not None and cap > model.max_output_tokens:
        param = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        raise InvalidRequest(
            f"{param} is {cap}, but '{model.slug}' produces at most {model.max_output_tokens} tokens.",
            code="invalid_value",
            param=param,
        )


def outcome_response(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.http_status, headers=outcome_headers(outcome))


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    """Our `x-ainfera-*` headers for a job's answer: job, receipt, cost, model, dropped params."""
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
    dropped = meta.get("dropped_params")
    if dropped:
        headers["x-ainfera-dropped-params"] = ", ".join(dropped)
    return headers


def includes_usage(req: ChatCompletionRequest) -> bool:
    return bool(req.stream_options and req.stream_options.include_usage)


def wants_async(request: Request) -> bool:
    """RFC 7240: `Prefer: respond-async` (possibly among other preferences)."""
    prefer = request.headers.get("prefer", "")
    return any(p.split("=", 1)[0].strip().lower() == "respond-async" for p in prefer.split(","))


@router.post("/v1/chat/completions", openapi_extra=chat_request_body())
async def create_chat_completion(request: Request, owner: Owner) -> Response:
    st = gateway_state(request)
    data = await read_json(request, st.res.settings.max_request_bytes)

    async def handle(binder: Binder) -> Response:
        policy = TenantPolicy.from_json(owner.tenant.spend_policy)
        req = validate_chat_request(data, strict=policy.strict_params)
        check_model_allowed(owner.settings, req.model)
        check_model(st.res.catalog.current, req, policy)
        jid = new_job_id()
        if req.stream and wants_async(request):
            raise InvalidRequest("stream cannot be combined with Prefer: respond-async: an asynchronous job is "
                                 "answered by GET /v1/jobs/{id}, never streamed. Drop one of them.",
                                 code="invalid_value", param="stream")
        limited = await check_rate_limits(st, owner, policy, req)
        if wants_async(request):

            async def bind(conn: Connection) -> None:
                await binder.bind(jid, conn)

            await submit_async(st.res.db, st.res.redis, job_id=jid, tenant_id=owner.tenant.id, request=req,
                               now=st.res.clock(), on_created=bind, key_id=owner.key_id, tracing=st.res.tracing)
            return with_headers(await accepted(jid), limited)
        job = DispatchJob(job_id=jid, tenant_id=owner.tenant.id, kind=JobKind.SYNC, request=req,
                          submitted_at=st.res.clock(), key_id=owner.key_id, key_limits=owner.settings.limits)
        if req.stream:
            return with_headers(await submit_streaming(st, job, include_usage=includes_usage(req), binder=binder),
                                limited)
        return with_headers(outcome_response(await submit_and_wait(st, job, binder=binder)), limited)

    async def accepted(jid: str) -> JSONResponse:
        async with st.res.db.acquire() as conn:
            stored = await job_outcome(conn, jid)
        assert stored is not None
        return JSONResponse(job_object(stored), status_code=202, headers={
            "location": f"/v1/jobs/{jid}", "preference-applied": "respond-async", "x-ainfera-job-id": jid})

    async def resume(jid: str) -> Response | WorkState:
        """The answer the first request with this key would have given, from the job it created."""
        async with st.res.db.acquire() as conn:
            stored = await job_outcome(conn, jid)
        if stored is not None and stored.kind == JobKind.ASYNC:
            return await accepted(jid)
        done = Outcome.from_row(stored) if stored is not None else None
        if done is not None:
            return answer(jid, done)
        if stored is not None or await job_known(st.res.redis, DISPATCH.queue, jid):
            return WorkState.RUNNING
        async with st.res.db.acquire() as conn:  # it may have finished between the two looks
            stored = await job_outcome(conn, jid)
        done = Outcome.from_row(stored) if stored is not None else None
        if done is not None:
            return answer(jid, done)
        return WorkState.RUNNING if stored is not None else WorkState.LOST

    def answer(jid: str, done: Outcome) -> Response:
        """A finished job answered again, streamed when this request streams."""
        if data.get("stream") is True:
            return replayed_stream(done, jid, include_usage=(data.get("stream_options") or {}).get("include_usage")
                                   is True)
        return outcome_response(done)

    return await idempotent(request, st, owner.tenant.id, canonical_body(data), handle, resume=resume)
