"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API, so Anthropic
clients work unchanged. A message is translated into a chat-completions request
(`shared/anthropic_api/chat_request.py`) and goes through the same submit, queue, worker, receipts and
audit as `POST /v1/chat/completions`; its answer and its stream are translated back. Errors on
these routes have Anthropic's shape (`gateway/errors.py`).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import KeyHeaderOwner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.idempotency import Binder, canonical_body, idempotent, sync_job_resume
from gateway.openapi import count_tokens_request_body, messages_request_body
from gateway.rate_limits import check_rate_limits, with_headers
from gateway.responses import JSONResponse
from gateway.routes.chat import check_model, outcome_headers
from gateway.streaming import replayed_stream, submit_streaming
from gateway.submit import submit_and_wait
from shared.anthropic_api.chat_request import chat_body
from shared.anthropic_api.errors import from_envelope
from shared.anthropic_api.events import MessageEvents, error_event, replay_events
from shared.anthropic_api.models import catalog_slug
from shared.anthropic_api.request import CountTokensRequest, MessagesRequest, validate_messages_request
from shared.anthropic_api.response import to_message
from shared.auth.key_access import check_model_allowed
from shared.catalog.types import Catalog
from shared.chat.request import ChatCompletionRequest, validate_chat_request
from shared.errors import InvalidRequest
from shared.ids import job_id as new_job_id
from shared.jobs import DispatchJob, JobKind, Outcome
from shared.routing.plan import pinned_model, route_request
from shared.routing.policy import TenantPolicy

router = APIRouter()

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_version(request: Request) -> None:
    """`anthropic-version` may be absent or any date (the shapes served are today's); `anthropic-beta`
    is ignored. A value that is not a date is a client bug worth a 400."""
    version = request.headers.get("anthropic-version")
    if version is not None and not _DATE.match(version.strip()):
        raise InvalidRequest(f"anthropic-version: {version[:64]!r} is not a version date such as 2023-06-01",
                             param="anthropic-version")


def message_response(outcome: Outcome) -> JSONResponse:
    """A finished job as Anthropic's message, or as Anthropic's error, with our `x-ainfera-*` headers."""
    headers = outcome_headers(outcome)
    if outcome.http_status != 200:
        status, body = from_envelope(outcome.http_status, outcome.body)
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(to_message(outcome.body), headers=headers)


class AnthropicEvents:
    """The `StreamFormat` of the Messages API: Anthropic's events (`shared/anthropic_api/events.py`)."""

    def __init__(self, job_id: str, *, input_tokens_estimate: int = 0) -> None:
        self._events = MessageEvents(job_id, input_tokens_estimate=input_tokens_estimate)

    def chunk(self, data: bytes) -> bytes:
        return self._events.chunk(data)

    def done(self) -> bytes:
        return self._events.end()

    def error(self, data: bytes) -> bytes:
        error = orjson.loads(data).get("error") or {}
        status = 400 if error.get("type") == "invalid_request_error" else 500
        return error_event(status, str(error.get("message") or "The stream failed."))

    def interrupted(self, job_id: str) -> bytes:
        return error_event(500, f"The stream was interrupted; GET /v1/jobs/{job_id} shows the whole answer once "
                                "the job has finished.")

    def replay(self, body: dict[str, Any]) -> list[bytes]:
        return [replay_events(body)]

    def failed(self, outcome: Outcome, job_id: str) -> Response:
        status, body = from_envelope(outcome.http_status, outcome.body)
        return JSONResponse(body, status_code=status, headers={"x-ainfera-job-id": job_id})


def translated(catalog: Catalog, msg: MessagesRequest | CountTokensRequest, *, strict: bool) -> ChatCompletionRequest:
    """The chat-completions request a Messages body stands for, checked as any chat request is."""
    return validate_chat_request(chat_body(msg, catalog_slug(catalog, msg.model)), strict=strict)


@router.post("/v1/messages", openapi_extra=messages_request_body())
async def create_message(request: Request, owner: KeyHeaderOwner) -> Response:
    st = gateway_state(request)
    check_version(request)
    data = await read_json(request, st.res.settings.max_request_bytes)

    async def handle(binder: Binder) -> Response:
        policy = TenantPolicy.from_json(owner.tenant.spend_policy)
        catalog = st.res.catalog.current
        req = translated(catalog, validate_messages_request(data, MessagesRequest), strict=policy.strict_params)
        check_model_allowed(owner.settings, req.model)
        check_model(catalog, req, policy)
        limited = await check_rate_limits(st, owner, policy, req)
        jid = new_job_id()
        job = DispatchJob(job_id=jid, tenant_id=owner.tenant.id, kind=JobKind.SYNC, request=req,
                          submitted_at=st.res.clock(), key_id=owner.key_id, key_limits=owner.settings.limits)
        if req.stream:
            events = AnthropicEvents(jid, input_tokens_estimate=route_request(req).input_tokens)
            return with_headers(await submit_streaming(st, job, binder=binder, events=events), limited)
        return with_headers(message_response(await submit_and_wait(st, job, binder=binder)), limited)

    def answer(jid: str, done: Outcome) -> Response:
        if data.get("stream") is True:
            return replayed_stream(done, jid, events=AnthropicEvents(jid))
        return message_response(done)

    resume = sync_job_resume(st, answer)

    return await idempotent(request, st, owner.tenant.id, canonical_body(data), handle, resume=resume)


@router.post("/v1/messages/count_tokens", openapi_extra=count_tokens_request_body())
async def count_tokens(request: Request, owner: KeyHeaderOwner) -> JSONResponse:
    """Our estimate of the input tokens (the router's), marked `x-ainfera-estimate: true`: providers'
    tokenizers differ and no provider is asked."""
    st = gateway_state(request)
    check_version(request)
    data = await read_json(request, st.res.settings.max_request_bytes)
    catalog = st.res.catalog.current
    req = translated(catalog, validate_messages_request(data, CountTokensRequest), strict=False)
    if not req.is_auto:
        pinned_model(catalog, req.model)
    return JSONResponse({"input_tokens": route_request(req).input_tokens}, headers={"x-ainfera-estimate": "true"})
