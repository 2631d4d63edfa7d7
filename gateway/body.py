"""Reading a JSON request body with a size limit (413 before we buffer too much)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from shared.chat.request import parse_body
from shared.errors import InvalidRequest, PayloadTooLarge


async def read_json(request: Request, limit: int) -> Any:
    raw = await _read(request, limit)
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    return parse_body(raw)


async def read_optional_json(request: Request, limit: int) -> Any:
    """As `read_json`, but an empty body is None (for requests whose body is all optional)."""
    raw = await _read(request, limit)
    return parse_body(raw) if raw.strip() else None


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as e:
            raise InvalidRequest("Invalid Content-Length header.") from e
        if size > limit:
            raise PayloadTooLarge(f"The request body is {size} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
