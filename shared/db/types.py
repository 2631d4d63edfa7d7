"""The database boundary as types: what our code uses of an asyncpg connection, pool and record.

asyncpg ships no type information, so without these every `conn` and `db` would be `Any` and
`mypy --strict` would not see the boundary at all. They describe only what we call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

# A row: read by column name (`r["id"]`) or turned into a dict (`dict(r)`).
Record = Mapping[str, Any]


class Connection(Protocol):
    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Record]: ...

    async def fetchrow(self, query: str, *args: Any) -> Record | None: ...

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any: ...

    def transaction(self, *, isolation: str | None = None, readonly: bool = False,
                    deferrable: bool = False) -> AbstractAsyncContextManager[Any]: ...

    async def copy_records_to_table(self, table_name: str, *, records: Sequence[Sequence[Any]],
                                    columns: Sequence[str] | None = None) -> str: ...

    async def close(self) -> None: ...


class Pool(Protocol):
    def acquire(self, *, timeout: float | None = None) -> AbstractAsyncContextManager[Connection]: ...

    async def close(self) -> None: ...
