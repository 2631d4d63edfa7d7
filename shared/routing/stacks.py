"""Stack filtering: the one rule both the router and `GET /v1/models?stack=` apply."""

from __future__ import annotations

from typing import Literal

from shared.catalog.types import Stack

StackHint = Literal["us", "eu", "china", "sea", "avoid-china"]
STACK_HINTS: tuple[str, ...] = ("us", "eu", "china", "sea", "avoid-china")
_ALL = frozenset(s.value for s in Stack)


def allowed_stacks(hint: str | None) -> frozenset[str]:
    """`china`, `eu`, `sea`, `us` keep only that stack; `avoid-china` drops china; None keeps all."""
    if hint is None:
        return _ALL
    if hint == "avoid-china":
        return _ALL - {Stack.CHINA.value}
    if hint not in _ALL:
        raise ValueError(f"unknown stack hint {hint!r}")
    return frozenset({hint})


def stack_allows(provider_stack: Stack | str, hint: str | None) -> bool:
    return str(provider_stack) in allowed_stacks(hint)
