"""One summary log line and one count in the request metrics per request, with a request id bound
for everything logged meanwhile.

A pure ASGI middleware (no per-request Request object), because it sits on every call. The
metrics' route label is the matched route's template (`/v1/batches/{batch_id}`), never the raw
path; the tenant class is what authentication found (`TENANT_CLASS_KEY`).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ids import new_id
from shared.logging import get_logger
from shared.metrics import Metrics
from shared.metrics.labels import UNMATCHED_ROUTE, TenantClass

log = get_logger("gateway.access")

# Where authentication leaves the caller's class in the request's scope, for the metrics.
TENANT_CLASS_KEY = "ainfera.tenant_class"


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

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
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                self.metrics.request(scope["method"], getattr(route, "path", UNMATCHED_ROUTE), status["code"],
                                     scope.get(TENANT_CLASS_KEY, TenantClass.ANONYMOUS), elapsed)
                path = scope.get("path", "")
                if path not in ("/healthz", "/readyz", "/metrics"):
                    log.info(
                        "request",
                        method=scope.get("method"),
                        path=path,
                        status=status["code"],
                        duration_ms=round(elapsed * 1000, 2),
                    )
