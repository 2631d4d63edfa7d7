"""Admin API for fanout runs (behind the `ADMIN` dependency): start one (optionally for one
provider), read one, list the latest."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.requests import Request

from gateway.auth import ADMIN
from gateway.body import read_json
from gateway.deps import gateway_state
from gateway.objects.lists import list_object
from gateway.responses import JSONResponse
from shared.db.fanout import get_run, latest_runs, run_probes
from shared.errors import InvalidRequest, NotFound
from shared.fanout.report import summarise
from shared.fanout.runs import start_run

router = APIRouter(prefix="/v1/admin/fanout", dependencies=[ADMIN])


@router.post("/runs")
async def create_run(request: Request) -> JSONResponse:
    st = gateway_state(request)
    raw = await request.body()
    data = await read_json(request, 4096) if raw else {}
    if not isinstance(data, dict) or set(data) - {"provider"}:
        raise InvalidRequest("The body may only hold 'provider'.", param="provider")
    provider = data.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise InvalidRequest("'provider' must be a string.", param="provider")
    run_id = await start_run(st.res.db, st.res.redis, trigger="manual", provider=provider)
    assert run_id is not None
    async with st.res.db.acquire() as conn:
        run = await get_run(conn, run_id)
    assert run is not None
    return JSONResponse(summarise(run, []), status_code=202)


@router.get("/runs/{run_id}")
async def retrieve_run(request: Request, run_id: str) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        run = await get_run(conn, run_id)
        if run is None:
            raise NotFound(f"No fanout run '{run_id}'.", param="run_id")
        probes = await run_probes(conn, run_id)
    return JSONResponse(summarise(run, probes))


@router.get("/runs")
async def list_runs(request: Request, limit: int = Query(default=20, ge=1, le=100)) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        runs = await latest_runs(conn, limit)
    return JSONResponse(list_object([summarise(r, []) for r in runs]))
