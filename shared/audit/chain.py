"""The hash-chain rule, the one definition both the writer and every verifier use.

event_hash = SHA-256 hex of (previous event_hash as hex, or "" for the first event)
followed by the canonical JSON of the payload: sorted keys, separators "," and ":",
non-ASCII as raw UTF-8. It matches what the public `ainfera` SDK (1.1.0) verifies.
Monetary amounts go into payloads as decimal strings, so no float formatting differs
between languages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def canonical_json(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def split_around_seq(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of `fields` plus a "seq" key, cut where seq's value goes.

    The database assigns seq under the chain lock and hashes prefix + seq + suffix,
    which is exactly `canonical_json({**fields, "seq": seq})` (a unit test pins that).
    """
    if "seq" in fields:
        raise ValueError("fields must not carry seq: the chain assigns it")

    def members(pairs: list[tuple[str, Any]]) -> str:
        return ",".join(
            json.dumps(k, ensure_ascii=False) + ":" + canonical_json(v).decode("utf-8") for k, v in pairs
        )

    items = sorted(fields.items())
    before = members([(k, v) for k, v in items if k < "seq"])
    after = members([(k, v) for k, v in items if k > "seq"])
    prefix = "{" + (before + "," if before else "") + '"seq":'
    suffix = ("," + after if after else "") + "}"
    return prefix, suffix


def event_hash(previous_hash: str | None, payload_bytes: bytes) -> str:
    h = hashlib.sha256()
    h.update((previous_hash or "").encode("ascii"))
    h.update(payload_bytes)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


def verify_events(
    events: Iterable[Mapping[str, Any]], *, start_hash: str | None = None, first_seq: int | None = None
) -> tuple[int, ChainBreak | None]:
    """Walk events (dicts with seq, payload, previous_hash, event_hash) in seq order.

    `payload` may be the canonical text as stored or the parsed object. To check a chain
    page by page, pass the previous page's last hash and the seq expected next. Returns
    the number of events checked and the first break, if any.
    """
    previous = start_hash
    expected_seq: int | None = first_seq
    count = 0
    for ev in events:
        seq = int(ev["seq"])
        if expected_seq is None:
            expected_seq = seq
        if seq != expected_seq:
            return count, ChainBreak(seq, f"non-contiguous seq: expected {expected_seq}")
        if ev.get("previous_hash") != previous:
            return count, ChainBreak(seq, "previous_hash does not match the prior event's hash")
        payload = ev["payload"]
        payload_bytes = canonical_json(json.loads(payload) if isinstance(payload, str) else payload)
        if isinstance(payload, str) and payload.encode("utf-8") != payload_bytes:
            return count, ChainBreak(seq, "stored payload is not in canonical form")
        if event_hash(previous, payload_bytes) != ev["event_hash"]:
            return count, ChainBreak(seq, "event_hash does not match the payload")
        payload_obj = json.loads(payload) if isinstance(payload, str) else payload
        if payload_obj.get("seq") != seq:
            return count, ChainBreak(seq, "payload seq differs from the event's seq")
        previous = ev["event_hash"]
        expected_seq = seq + 1
        count += 1
    return count, None
