"""Server-side Lua scripts run by SHA (EVALSHA), falling back to EVAL when Redis does not know them.

The scripts themselves live next to the code that uses them (queue claims and enqueues,
learned routing statistics).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class LuaScript:
    """One script, hashed once; nothing is registered per client, so it is safe as a module constant.

    Redis caches a script after the first EVAL, so the fallback costs one
    extra round trip per server restart or SCRIPT FLUSH, not per call.
    """

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await cast(Awaitable[Any], redis.evalsha(self.sha, len(keys), *keys, *args))
        except NoScriptError:
            return await cast(Awaitable[Any], redis.eval(self.source, len(keys), *keys, *args))

    def load_into(self, pipe: Pipeline) -> None:
        """Queue a SCRIPT LOAD so that EVALSHA calls later in the same pipeline cannot miss."""
        pipe.script_load(self.source)

    def queue_call(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[str]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)
