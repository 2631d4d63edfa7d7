"""`GET /v1/models` (OpenAI list shape plus our fields) and `GET /v1/models/{id}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import authenticate
from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.catalog.types import Catalog, Model
from shared.chat.request import AUTO_MODELS
from shared.errors import InvalidRequest, ModelNotFound
from shared.routing.stacks import STACK_HINTS, stack_allows

router = APIRouter()

CATALOG_CREATED = 1784851200  # 2026-07-24, the date of the seeded catalog's facts
AUTO_MODEL_ID = "ainfera-auto"


def model_object(catalog: Catalog, m: Model) -> dict[str, Any]:
    p = catalog.provider_of(m)
    return {
        "id": m.slug,
        "object": "model",
        "created": CATALOG_CREATED,
        "owned_by": p.name,
        "provider": p.name,
        "stack": p.stack.value,
        "fast_tier": p.fast_tier,
        "pricing": {"input_usd_per_mtok": m.input_usd_per_mtok, "output_usd_per_mtok": m.output_usd_per_mtok},
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "aa_index": m.aa_index,
        "capabilities": {"streaming": m.supports_streaming, "tools": m.supports_tools, "vision": m.supports_vision},
    }


def auto_object() -> dict[str, Any]:
    return {
        "id": AUTO_MODEL_ID,
        "object": "model",
        "created": CATALOG_CREATED,
        "owned_by": "ainfera",
        "description": "Routes each request to the best active model that fits its constraints "
        "(alias: ainfera-inference). See routing_hint.",
    }


@router.get("/v1/models")
async def list_models(
    request: Request,
    stack: str | None = Query(default=None, description="us | eu | china | sea | avoid-china"),
) -> JSONResponse:
    await authenticate(request)
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
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(request: Request, model_id: str) -> JSONResponse:
    await authenticate(request)
    if model_id in AUTO_MODELS:
        return JSONResponse(auto_object())
    catalog = gateway_state(request).res.catalog.current
    m = catalog.models.get(model_id)
    if m is None or not catalog.servable(m):
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return JSONResponse(model_object(catalog, m))
