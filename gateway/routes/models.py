"""`GET /v1/models` (OpenAI list shape plus our fields) and `GET /v1/models/{id}`."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import TENANT
from gateway.deps import gateway_state
from gateway.objects.lists import list_object
from gateway.objects.models import auto_object, model_object
from gateway.responses import JSONResponse
from shared.chat.request import AUTO_MODELS
from shared.errors import InvalidRequest, ModelNotFound
from shared.routing.stacks import STACK_HINTS, stack_allows

router = APIRouter(dependencies=[TENANT])


@router.get("/v1/models")
async def list_models(
    request: Request,
    stack: str | None = Query(default=None, description="us | eu | china | sea | avoid-china"),
) -> JSONResponse:
    if stack is not None and stack not in STACK_HINTS:
        raise InvalidRequest(
            f"Invalid value for 'stack': {stack!r}; expected one of {', '.join(STACK_HINTS)}.",
            code="invalid_value",
            param="stack",
        )
    catalog = gateway_state(request).res.catalog.current
    data = [auto_object()]
    for m in sorted(catalog.models.values(), key=lambda m: m.slug):
        if catalog.servable(m) and stack_allows(catalog.provider_of(m).stack, stack):
            data.append(model_object(catalog, m))
    return JSONResponse(list_object(data))


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(request: Request, model_id: str) -> JSONResponse:
    if model_id in AUTO_MODELS:
        return JSONResponse(auto_object())
    catalog = gateway_state(request).res.catalog.current
    m = catalog.models.get(model_id)
    if m is None or not catalog.servable(m):
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return JSONResponse(model_object(catalog, m))
