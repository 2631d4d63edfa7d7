"""The gateway's app factory and lifespan: open resources once, serve the OpenAI-compatible API
(and Anthropic's Messages API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.telemetry import TelemetryConfig

from gateway.deps import GatewayState
from gateway.errors import install_error_handlers
from gateway.middleware import AccessLog
from gateway.openapi import install_openapi
from gateway.responses import JSONResponse
from gateway.routes import (
    admin,
    agents,
    audit,
    batches,
    chat,
    console,
    fanout,
    files,
    health,
    inference,
    jobs,
    messages,
    metrics_route,
    models,
    receipts,
    routing,
    usage,
)
from gateway.url_params import refuse_unstorable_params
from shared.logging import configure_logging
from shared.metrics import Metrics
from shared.queue.names import ASYNC_WAITERS_INSTANCE
from shared.queue.notify import CompletionWaiters
from shared.resources import open_resources
from shared.settings import Settings
from shared.tracing import install_tracer_provider

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: no trace each


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()  # this gateway's: the middleware counts into it, GET /metrics serves it

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, metrics=metrics) as res:
            waiters = CompletionWaiters(res.redis)
            async_waiters = CompletionWaiters(res.redis, instance=ASYNC_WAITERS_INSTANCE)
            await waiters.start()
            await async_waiters.start()
            try:
                app.state.gateway = GatewayState(res=res, waiters=waiters, async_waiters=async_waiters)
                yield
            finally:
                await async_waiters.stop()
                await waiters.stop()

    app = FastAPI(
        title="ainfera-dispatch",
        version="0.1.0",
        description="OpenAI-compatible LLM inference router whose dispatch runs through a queue.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
        dependencies=[Depends(refuse_unstorable_params)],
        telemetry=telemetry(settings),
    )
    install_error_handlers(app)
    install_openapi(app)
    for module in (chat, messages, inference, agents, routing, models, files, batches, jobs, receipts, usage, audit,
                   admin, fanout, health, metrics_route, console):
        app.include_router(module.router)
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def telemetry(settings: Settings) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry instrumentation, used for the server span of each request: in the
    caller's trace when it sends a `traceparent`, named by the route template, around the middleware
    (so the access log line is written under it). Only when our settings turn tracing on: FastAPI
    would otherwise trace whenever any tracer provider is installed in the process. Its metrics and
    log records stay off (metrics come from prometheus-client; its log records carry exception
    messages), and so do its per-dependency and per-endpoint spans: the call's own spans say more."""
    return {"tracing": settings.tracing, "metrics": False, "logs": False, "operation_spans": False,
            "auto_configure": False, "exclude": lambda scope: scope.get("path") in UNTRACED_PATHS}


def create_app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory gateway.app:create_app_from_env`."""
    settings = Settings()
    configure_logging(settings, process="gateway")
    install_tracer_provider(settings, process="gateway")
    return create_app(settings)
