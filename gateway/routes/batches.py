"""The OpenAI Batches API: create, retrieve, list, cancel.

Creating a batch writes one row and answers at once (status `validating`); the batch
supervisor then feeds its lines to the bulk queue (`in_progress`), finalizes it and
writes the output and error files' descriptions (`completed`, `expired`, `cancelled`).
A key with `allowed_models` cannot create a batch whose lines name any other model (403).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Owner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.idempotency import Binder, WorkState, canonical_body, idempotent
from gateway.objects.batches import batch_object
from gateway.objects.lists import cursor_page
from gateway.responses import JSONResponse
from shared.auth.key_access import check_model_allowed
from shared.auth.key_settings import KeySettings
from shared.batches.lines import BATCH_ENDPOINTS
from shared.db.batches import create_batch, get_batch, list_batches, request_cancel
from shared.db.files import get_file, models_of_lines
from shared.db.types import Connection
from shared.errors import InvalidRequest, NotFound, PermissionDenied
from shared.ids import new_id
from shared.job_queue import nudge_supervisor

router = APIRouter()
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}


class CreateBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    input_file_id: Annotated[str, Field(min_length=1, max_length=200)]
    endpoint: Literal["/v1/chat/completions"]
    completion_window: Literal["24h"]
    metadata: Annotated[
        dict[Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=512)]],
        Field(max_length=16),
    ] | None = None


def _parse(data: Any) -> CreateBatch:
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        return CreateBatch.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        param = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", code="invalid_value", param=param) from e


async def _check_lines_allowed(conn: Connection, settings: KeySettings, file_id: str) -> None:
    """A key with `allowed_models` may not create a batch whose lines name another model: the
    whole batch is refused (403 naming the first such line), before any line runs."""
    for model, line_no in await models_of_lines(conn, file_id):
        try:
            check_model_allowed(settings, model)
        except PermissionDenied as e:
            raise PermissionDenied(f"Line {line_no} of file '{file_id}': {e.message}", code=e.code,
                                   param="input_file_id") from e


@router.post("/v1/batches")
async def create(request: Request, owner: Owner) -> Response:
    st = gateway_state(request)
    data = await read_json(request, 64 * 1024)

    async def handle(binder: Binder) -> Response:
        body = _parse(data)
        async with st.res.db.acquire() as conn, conn.transaction():
            f = await get_file(conn, body.input_file_id, owner.tenant.id)
            if f is None or f.status != "processed":
                raise NotFound(f"No file '{body.input_file_id}'.", param="input_file_id")
            if f.kind != "input" or f.purpose != "batch":
                raise InvalidRequest(f"File '{f.id}' was not uploaded with purpose \"batch\".",
                                     param="input_file_id")
            assert body.endpoint in BATCH_ENDPOINTS
            if owner.settings.allowed_models is not None:
                await _check_lines_allowed(conn, owner.settings, f.id)
            now = st.res.clock()
            batch = await create_batch(
                conn, batch_id=new_id("batch"), tenant_id=owner.tenant.id, input_file_id=f.id,
                endpoint=body.endpoint, completion_window=body.completion_window, metadata=body.metadata,
                total=f.line_count, expires_at=now + COMPLETION_WINDOWS[body.completion_window],
                key_id=owner.key_id,
            )
            await binder.bind(batch.id, conn)  # commits with the batch: a repeat finds this batch
        await nudge_supervisor(st.res.redis, batch.id)
        return JSONResponse(batch_object(batch))

    async def resume(batch_id: str) -> Response | WorkState:
        async with st.res.db.acquire() as conn:
            batch = await get_batch(conn, batch_id, owner.tenant.id)
        return JSONResponse(batch_object(batch)) if batch is not None else WorkState.LOST

    return await idempotent(request, st, owner.tenant.id, canonical_body(data), handle, resume=resume)


@router.get("/v1/batches/{batch_id}")
async def retrieve(request: Request, owner: Owner, batch_id: str) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        batch = await get_batch(conn, batch_id, owner.tenant.id)
    if batch is None:
        raise NotFound(f"No batch '{batch_id}'.", param="batch_id")
    return JSONResponse(batch_object(batch))


@router.get("/v1/batches")
async def list_(
    request: Request,
    owner: Owner,
    after: str | None = Query(default=None, description="the last id of the previous page"),
    limit: int = Query(default=20, ge=1, le=100),
) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        rows = await list_batches(conn, owner.tenant.id, after, limit + 1)
    return JSONResponse(cursor_page(rows, limit, batch_object))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel(request: Request, owner: Owner, batch_id: str) -> Response:
    st = gateway_state(request)

    async def handle(_: Binder) -> Response:
        async with st.res.db.acquire() as conn:
            batch = await request_cancel(conn, batch_id, owner.tenant.id)
            if batch is None:
                existing = await get_batch(conn, batch_id, owner.tenant.id)
                if existing is None:
                    raise NotFound(f"No batch '{batch_id}'.", param="batch_id")
                if existing.status != "cancelling":
                    raise InvalidRequest(f"Cannot cancel a batch that is {existing.status}.",
                                         code="batch_not_cancellable", param="batch_id")
                batch = existing
        await nudge_supervisor(st.res.redis, f"cancel:{batch_id}")
        return JSONResponse(batch_object(batch))

    return await idempotent(request, st, owner.tenant.id, b"", handle)
