"""Worker startup and shutdown: open the Resources once per process and keep them in arq's ctx."""

from __future__ import annotations

import contextlib
from typing import Any

from shared.resources import Resources, open_resources
from shared.settings import Settings

_RESOURCES = "resources"
_STACK = "resources_stack"


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    stack = contextlib.AsyncExitStack()
    ctx[_RESOURCES] = await stack.enter_async_context(open_resources(settings))
    ctx[_STACK] = stack


async def on_shutdown(ctx: dict[str, Any]) -> None:
    stack: contextlib.AsyncExitStack | None = ctx.pop(_STACK, None)
    if stack is not None:
        await stack.aclose()


def resources(ctx: dict[str, Any]) -> Resources:
    res: Resources = ctx[_RESOURCES]
    return res
