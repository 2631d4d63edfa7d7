"""The one place errors become HTTP responses, never a traceback: the OpenAI envelope, or on the
Messages routes (`/v1/messages...`) Anthropic's error shape (`shared/anthropic_api/errors.py`), or
on Ainfera's own routes (`/v1/inference`, `/v1/agents...`, `/v1/wallets...`, `/v1/ledger...`) its
flat shape (`shared/ainfera_api/errors.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.responses import JSONResponse
from shared.ainfera_api.errors import flat_body
from shared.anthropic_api.errors import anthropic_status, error_body
from shared.db import TRANSIENT_DB_ERRORS
from shared.errors import (
    AinferaError,
    AuthenticationFailed,
    InternalError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from shared.logging import get_logger

log = get_logger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type"}


MESSAGES_PATH = "/v1/messages"


def speaks_anthropic(path: str) -> bool:
    """True for the routes that answer in Anthropic's shapes, errors included."""
    return path == MESSAGES_PATH or path.startswith(MESSAGES_PATH + "/")


AINFERA_PATHS = ("/v1/inference", "/v1/agents", "/v1/wallets", "/v1/ledger")


def speaks_ainfera(path: str) -> bool:
    """True for the routes of Ainfera's own API, which answer errors in its flat shape."""
    return any(path == p or path.startswith(p + "/") for p in AINFERA_PATHS) or (
        path.startswith("/v1/audit/") and path.endswith("/annex-iv"))


def error_response(err: AinferaError, headers: dict[str, str] | None = None, *, path: str = "") -> JSONResponse:
    """`err` as the API at `path` reports errors (OpenAI's envelope unless it is a Messages route)."""
    hdrs = {**err.headers(), **(headers or {})}
    if isinstance(err, AuthenticationFailed):
        hdrs["www-authenticate"] = "Bearer"
    if speaks_anthropic(path):
        return JSONResponse(error_body(err.status, err.message), status_code=anthropic_status(err.status),
                            headers=hdrs)
    if speaks_ainfera(path):
        return JSONResponse(flat_body(err), status_code=err.status, headers=hdrs)
    return JSONResponse(err.envelope(), status_code=err.status, headers=hdrs)


def install_error_handlers(app: FastAPI) -> None:
    async def on_ainfera(req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AinferaError)
        return error_response(exc, path=req.url.path)

    async def on_validation(req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return error_response(InvalidRequest(f"Invalid value for '{param}': {first.get('msg', 'invalid')}.",
                                             code="invalid_value", param=param or None), path=req.url.path)

    async def on_http(req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            err: AinferaError = NotFound("Unknown URL. See /docs for the API.", code="unknown_url")
            return error_response(err, path=req.url.path)
        headers = dict(exc.headers or {})
        if speaks_anthropic(req.url.path):
            return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code,
                                headers=headers)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if speaks_ainfera(req.url.path):
            return JSONResponse({"error": code, "code": code, "message": str(exc.detail),
                                 "type": "invalid_request_error", "param": None},
                                status_code=exc.status_code, headers=headers)
        body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "code": code, "param": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    async def on_unavailable(req: Request, exc: Exception) -> JSONResponse:
        # Postgres or Redis went away (restart, failover): a retryable 503, not a 500.
        log.warning("dependency_unavailable", error=type(exc).__name__)
        return error_response(ServiceUnavailable("A backing service is briefly unavailable; retry shortly."),
                              path=req.url.path)

    async def on_unexpected(req: Request, exc: Exception) -> JSONResponse:
        # Process boundary: anything unanticipated is logged with its traceback here and
        # answered with a generic envelope; internals never reach the caller.
        log.exception("unhandled_error", error=type(exc).__name__)
        return error_response(InternalError("The server had an error while processing your request."),
                              path=req.url.path)

    app.add_exception_handler(AinferaError, on_ainfera)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for transient in (*TRANSIENT_DB_ERRORS, RedisError):
        app.add_exception_handler(transient, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
