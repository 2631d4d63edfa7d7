"""The usage report: OpenAI's list envelope of one object per group, with the grouping and the
UTC range it covers (so a caller relying on the defaults sees what they were)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.objects.lists import list_object
from shared.usage import UsageGroup, UsageQuery


def usage_object(query: UsageQuery, groups: list[UsageGroup]) -> dict[str, Any]:
    body = list_object([g.public(query.group_by) for g in groups])
    body.update({"group_by": query.group_by.value, "from": _rfc3339(query.start), "to": _rfc3339(query.end)})
    return body


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
