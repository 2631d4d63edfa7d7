"""Public identifiers: a prefix and a ULID (time-ordered, so new rows land at the end of indexes)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def ulid(now_ms: int | None = None) -> str:
    """26 characters: 48 bits of milliseconds, then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid().lower()}"


def job_id() -> str:
    return new_id("job")


def receipt_id() -> str:
    return new_id("rcpt")
