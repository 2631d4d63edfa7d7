"""One summary log line per request, with a request id bound for everything logged meanwhile.

A pure ASGI middleware (no per-request Request object), because it sits on every call.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ids import new_id
from shared.logging import get_logger

log = get_logger("gateway.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                path = scope.get("path", "")
                if path not in ("/healthz", "/readyz", "/metrics"):
                    log.info(
                        "request",
                        method=scope.get("method"),
                        path=path,
                        status=status["code"],
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    )
