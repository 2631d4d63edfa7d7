"""A tenant's spend read back from its receipts: the query (grouping and UTC range, checked once
for the API and the command line) and one group's totals. Budgets and limits live elsewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.errors import InvalidRequest
from shared.receipts.types import money

DEFAULT_DAYS = 30
MAX_RANGE = timedelta(days=366)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class GroupBy(StrEnum):
    DAY = "day"
    MODEL = "model"
    KEY = "key"  # the API key that submitted each job




@dataclass(frozen=True, slots=True)
class UsageQuery:
    group_by: GroupBy
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    @staticmethod
    def parse(group_by: str | None, start: str | None, end: str | None, *, now: datetime) -> UsageQuery:
        """From the caller's text: a 400 naming the parameter for anything it cannot use.

        `from` and `to` are RFC 3339 times or YYYY-MM-DD dates (UTC). A date as `to` includes that
        whole day. Defaults: the last 30 days up to now; at most 366 days.
        """
        group = _group(group_by)
        to = _instant(end, "to", end_of_day=True) if end is not None else now
        if start is not None:
            frm = _instant(start, "from", end_of_day=False)
        else:
            try:
                frm = to - timedelta(days=DEFAULT_DAYS)
            except OverflowError:
                raise InvalidRequest("'to' is too early: give 'from' too.", code="invalid_value", param="to") from None
        if frm >= to:
            raise InvalidRequest("'from' must be earlier than 'to'.", code="invalid_value", param="from")
        if to - frm > MAX_RANGE:
            raise InvalidRequest("The range from 'from' to 'to' may span at most 366 days.", code="invalid_value",
                                 param="to")
        return UsageQuery(group, frm, to)


def _group(text: str | None) -> GroupBy:
    if text is None:
        return GroupBy.DAY
    try:
        group = GroupBy(text)
    except ValueError:
        raise InvalidRequest(f"Invalid value for 'group_by': {text!r}; use one of day, model, key.",
                             code="invalid_value", param="group_by") from None
    return group


def _instant(text: str, param: str, *, end_of_day: bool) -> datetime:
    bad = InvalidRequest(f"Invalid value for '{param}': use an RFC 3339 time (2025-01-31T12:00:00Z) or a date "
                         "(2025-01-31), in UTC.", code="invalid_value", param=param)
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1) if end_of_day else start
        if "T" not in text.upper() and " " not in text:
            raise bad
        value = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case t and z
        if value.tzinfo is None:
            raise InvalidRequest(f"Invalid value for '{param}': an RFC 3339 time needs an offset (Z or +00:00).",
                                 code="invalid_value", param=param)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad from None


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """One group's totals: `key` is the UTC day, the served model's slug (None: none was served), or
    the submitting key's id (a batch line: its batch's; None: a probe, or a job from before keys
    were recorded)."""

    key: date | str | None
    requests: int
    succeeded: int
    failed: int
    cancelled: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: Decimal

    def public(self, group_by: GroupBy) -> dict[str, Any]:
        """The API shape; money as a decimal string, as receipts show it."""
        label = self.key.isoformat() if isinstance(self.key, date) else self.key
        return {
            "object": "usage.group",
            group_by.value if group_by != GroupBy.DAY else "date": label,
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cost_usd": money(self.cost_usd),
        }
