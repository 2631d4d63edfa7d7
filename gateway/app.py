"""The gateway's app factory and lifespan: open resources once, serve the OpenAI-compatible API
(and Anthropic's Messages API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from gateway.deps import GatewayState
from gateway.errors import install_error_handlers
from gateway.middleware import AccessLog
from gateway.openapi import install_openapi
from gateway.responses import JSONResponse
from gateway.routes import (
    admin,
    audit,
    batches,
    chat,
    fanout,
    files,
    health,
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
    )
    install_error_handlers(app)
    install_openapi(app)
    for module in (chat, messages, routing, models, files, batches, jobs, receipts, usage, audit, admin, fanout,
                   health, metrics_route):
        app.include_router(module.router)
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory gateway.app:create_app_from_env`."""
    settings = Settings()
    configure_logging(settings, process="gateway")
    return create_app(settings)
