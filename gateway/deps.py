"""The one typed accessor for what the gateway's lifespan opened."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from shared.queue.notify import CompletionWaiters
from shared.resources import Resources


@dataclass(frozen=True, slots=True)
class GatewayState:
    res: Resources
    waiters: CompletionWaiters  # this gateway's own channel: synchronous calls
    async_waiters: CompletionWaiters  # the channel all gateways share: async jobs, for ?wait=


def gateway_state(request: Request) -> GatewayState:
    st: GatewayState = request.app.state.gateway
    return st
