"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Postgres and Redis answer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request

from gateway.deps import gateway_state
from gateway.responses import JSONResponse

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    res = gateway_state(request).res
    checks: dict[str, str] = {}

    async def check_db() -> None:
        async with res.db.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")

    async def check_redis() -> None:
        await res.redis.ping()

    for name, probe in (("postgres", check_db), ("redis", check_redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as e:  # readiness reports any failure as "not ready"; it never raises
            checks[name] = f"unavailable ({type(e).__name__})"
    ready = all(v == "ok" for v in checks.values()) and bool(res.catalog.current.models)
    checks["catalog"] = f"{len(res.catalog.current.models)} models"
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)
