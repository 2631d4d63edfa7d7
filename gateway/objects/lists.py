"""OpenAI's list envelope (`{"object": "list", "data": [...]}`), with or without a page cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Row = TypeVar("Row")


def list_object(data: list[dict[str, Any]], *, has_more: bool | None = None) -> dict[str, Any]:
    """A whole list (`has_more` left out), or a page of one that says whether more follow."""
    body: dict[str, Any] = {"object": "list", "data": data}
    if has_more is not None:
        body["has_more"] = has_more
    return body


def cursor_page(rows: Sequence[Row], limit: int, shape: Callable[[Row], dict[str, Any]]) -> dict[str, Any]:
    """A page read with `after`: `rows` holds up to `limit + 1` rows, the extra one only telling
    that more follow; `first_id` and `last_id` are what the caller passes as `after` next."""
    data = [shape(r) for r in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > limit,
    }
