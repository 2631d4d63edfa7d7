"""Stack filtering: the one rule both the router and `GET /v1/models?stack=` apply.

A provider's stack is the jurisdiction of the company that serves it, parent included (see `Stack`), so
`avoid-china` keeps away from every provider under Chinese jurisdiction, wherever its servers are.
"""

from __future__ import annotations

from enum import StrEnum

from shared.catalog.types import Stack


class StackHint(StrEnum):
    """What a caller may ask for: one stack, or every stack but China's."""

    US = "us"
    EU = "eu"
    CHINA = "china"
    SEA = "sea"
    AVOID_CHINA = "avoid-china"


STACK_HINTS: tuple[str, ...] = tuple(h.value for h in StackHint)
_ALL = frozenset(s.value for s in Stack)


def allowed_stacks(hint: str | None) -> frozenset[str]:
    """`china`, `eu`, `sea`, `us` keep only that stack; `avoid-china` drops china; None keeps all."""
    if hint is None:
        return _ALL
    if hint == StackHint.AVOID_CHINA:
        return _ALL - {Stack.CHINA.value}
    if hint not in _ALL:
        raise ValueError(f"unknown stack hint {hint!r}")
    return frozenset({hint})


def stack_allows(provider_stack: Stack | str, hint: str | None) -> bool:
    return str(provider_stack) in allowed_stacks(hint)
