"""`POST /v1/routing/explain`: the decision a chat completion would get, without calling anyone.

It takes the same body as `POST /v1/chat/completions` and runs the same planning code
as the worker (`shared.routing.plan`), with the same catalog, statistics and policy.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from gateway.auth import Owner
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.objects.routing import decision_object
from gateway.openapi import chat_request_body
from gateway.responses import JSONResponse
from shared.auth.key_access import check_model_allowed
from shared.chat.request import validate_chat_request
from shared.routing.plan import plan_request
from shared.routing.policy import TenantPolicy

router = APIRouter()


@router.post("/v1/routing/explain", openapi_extra=chat_request_body())
async def explain_routing(request: Request, owner: Owner) -> JSONResponse:
    st = gateway_state(request)
    req = validate_chat_request(await read_json(request, st.res.settings.max_request_bytes))
    check_model_allowed(owner.settings, req.model)
    plan = plan_request(
        req,
        st.res.catalog.current,
        policy=TenantPolicy.from_json(owner.tenant.spend_policy),
        stats=st.res.stats.current,
        settings=st.res.settings,
    )
    return JSONResponse(decision_object(req.model, plan))
