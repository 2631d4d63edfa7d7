"""The one typed accessor for what the gateway's lifespan opened."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from shared.queue.notify import CompletionWaiters
from shared.resources import Resources


@dataclass(frozen=True, slots=True)
class GatewayState:
    res: Resources
    waiters: CompletionWaiters  # this gateway's own channel: synchronous calls
    async_waiters: CompletionWaiters  # the channel all gateways share: async jobs, for ?wait=
    # Short tasks that must outlive the request that started them (telling a worker a caller left).
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def gateway_state(request: Request) -> GatewayState:
    st: GatewayState = request.app.state.gateway
    return st
