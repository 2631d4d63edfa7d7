"""Stack filtering: the one rule both the router and `GET /v1/models?stack=` apply."""

from __future__ import annotations

from typing import Literal

from shared.catalog.types import Stack

StackHint = Literal["us", "eu", "china", "sea", "avoid-china"]
STACK_HINTS: tuple[str, ...] = ("us", "eu", "china", "sea", "avoid-china")


def stack_allows(provider_stack: Stack | str, hint: str | None) -> bool:
    """`china`, `eu`, `sea`, `us` keep only that stack; `avoid-china` drops china; None keeps all."""
    if hint is None:
        return True
    if hint == "avoid-china":
        return str(provider_stack) != Stack.CHINA.value
    return str(provider_stack) == hint
