"""`/console`: the operator console. The page and its script are static and hold no data (so the
page itself needs no key); the script asks for the admin key, keeps it in the tab's
sessionStorage only, and polls `GET /console/data` with it as a bearer token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.auth import ADMIN
from gateway.console.data import ConsoleCache, console_data
from gateway.deps import gateway_state
from gateway.responses import JSONResponse

router = APIRouter()

_DIR = Path(__file__).resolve().parent.parent / "console"
_PAGE = (_DIR / "console.html").read_text()
_SCRIPT = (_DIR / "console.js").read_text()
# The page runs only its own script and talks only to this origin.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@router.get("/console", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={"content-security-policy": _CSP, "cache-control": "no-store"})


@router.get("/console/console.js", include_in_schema=False)
async def script() -> Response:
    return Response(_SCRIPT, media_type="text/javascript", headers={"cache-control": "no-store"})


@router.get("/console/data", dependencies=[ADMIN], include_in_schema=False)
async def data(request: Request) -> JSONResponse:
    state = request.app.state
    if not hasattr(state, "console_cache"):
        state.console_cache = ConsoleCache()
    return JSONResponse(await console_data(gateway_state(request).res, state.console_cache),
                        headers={"cache-control": "no-store"})
