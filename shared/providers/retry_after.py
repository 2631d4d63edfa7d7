"""How long a provider asked us to wait: `Retry-After` and the vendor headers that say the same.

Pure parsing; the transport decides whether to wait that long (it caps the wait and
gives up when the wait would overrun the overall deadline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Go-style durations as OpenAI and Groq send them in x-ratelimit-reset-*: "1s", "6m0s", "2m59.56s", "20ms".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait before retrying, or None when the provider did not say.

    Looked up in this order: `retry-after-ms` (OpenAI, the most precise), `Retry-After`
    (delta-seconds or an HTTP date, RFC 9110), then the reset time of whichever
    `x-ratelimit-remaining-{requests,tokens}` bucket is exhausted.
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000.0)

    header = lowered.get("retry-after")
    if header is not None:
        parsed = parse_retry_after(header, now=now)
        if parsed is not None:
            return parsed

    waits = [
        wait
        for bucket in ("requests", "tokens")
        if lowered.get(f"x-ratelimit-remaining-{bucket}", "").strip() == "0"
        and (wait := parse_duration(lowered.get(f"x-ratelimit-reset-{bucket}", ""))) is not None
    ]
    return max(waits) if waits else None


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """One `Retry-After` value: delta-seconds (fractions tolerated) or an HTTP date; None if neither."""
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def parse_duration(value: str) -> float | None:
    """A Go-style duration ("6m0s", "250ms") or plain seconds; None if it is neither."""
    text = value.strip()
    if not text:
        return None
    seconds = _number(text)
    if seconds is not None:
        return max(0.0, seconds)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None
