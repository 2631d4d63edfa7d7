"""`GET /metrics`: this gateway's Prometheus metrics, plus the shared state read at scrape time
(queue depth and age, batch lines, the last fanout run).

Open, as Prometheus scrapes expect (no label holds a prompt, a key or an id); with
`AINFERA_METRICS_TOKEN` set it requires that bearer token, which Prometheus sends with
`authorization: {credentials: ...}` in its scrape config.
"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gateway.deps import gateway_state
from shared.auth.keys import bearer_token, same_secret
from shared.errors import AuthenticationFailed
from shared.metrics.scrape import refresh_shared_state

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    res = gateway_state(request).res
    expected = res.settings.metrics_token
    if expected is not None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not same_secret(token, expected.get_secret_value()):
            raise AuthenticationFailed("GET /metrics needs 'Authorization: Bearer <AINFERA_METRICS_TOKEN>'.")
    await refresh_shared_state(res.metrics, res.redis, res.db)
    return Response(generate_latest(res.metrics.registry), media_type=CONTENT_TYPE_LATEST)
