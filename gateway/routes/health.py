"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: every dependency a call needs
is there: Postgres and Redis answer, the catalog is loaded, the signing key signs).

`/readyz` answers 200 when all are up and 503 when any is down, with each one's state in
`dependencies`. `checks` keeps the earlier one-string-per-dependency summary, for whatever
reads it. Probes run concurrently, each bounded by `PROBE_TIMEOUT_S`, so a dependency that
hangs makes the answer slow by at most that, never stuck.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request

from gateway.deps import gateway_state
from gateway.responses import JSONResponse
from shared.resources import Resources
from shared.signing import public_keys, verify

router = APIRouter()

PROBE_TIMEOUT_S = 2.0
_PROBE_OBJECT = {"probe": "readyz"}  # signed and verified with the published key, never stored


@router.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _probe(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """One dependency's state: `up` with what the check says, or `down` with the error's class
    (a class name, never its message: a driver's message may name hosts or users)."""
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=PROBE_TIMEOUT_S)
    except Exception as e:  # readiness reports any failure as "down"; it never raises
        return {"state": "down", "error": type(e).__name__}
    return {"state": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2), **detail}


def _checks(res: Resources) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    async def postgres() -> dict[str, Any]:
        async with res.db.acquire(timeout=PROBE_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")
        return {}

    async def redis() -> dict[str, Any]:
        await res.redis.ping()
        return {}

    async def catalog() -> dict[str, Any]:
        snapshot = res.catalog.current
        if not snapshot.models:
            raise LookupError("no models loaded")
        return {"models": len(snapshot.models), "active_models": sum(m.active for m in snapshot.models.values()),
                "version": snapshot.version}

    async def signing_key() -> dict[str, Any]:
        signed = res.signer.sign(_PROBE_OBJECT)
        problem = verify(signed, public_keys(res.signer.jwks()))
        if problem is not None:
            raise ValueError(problem)
        return {"kid": res.signer.kid}

    return {"postgres": postgres, "redis": redis, "catalog": catalog, "signing_key": signing_key}


def _summary(name: str, state: dict[str, Any]) -> str:
    """The earlier `checks` strings: "ok" or "unavailable (Error)", and the catalog's model count."""
    if name == "catalog":
        return f"{state.get('models', 0)} models"
    return "ok" if state["state"] == "up" else f"unavailable ({state['error']})"


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    res = gateway_state(request).res
    checks = _checks(res)
    states = dict(zip(checks, await asyncio.gather(*(_probe(c) for c in checks.values())), strict=True))
    ready = all(s["state"] == "up" for s in states.values())
    return JSONResponse({"status": "ready" if ready else "not_ready",
                         "checks": {name: _summary(name, s) for name, s in states.items()},
                         "dependencies": states},
                        status_code=200 if ready else 503)
