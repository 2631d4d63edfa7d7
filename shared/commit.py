"""Committing a finished job: its outcome, signed receipt and audit event, written once, and never
lost to a database that is briefly away.

`build_commit` turns a finished call into exactly what goes to Postgres (pure, no I/O).
`write_commit` sends it through the group-commit finisher and retries a failed write with the
answer in hand, never by calling the provider again. When the database stays away longer than
the job can wait (`commit_retry_s`), the commit is held in Redis (`held_key`, lossless JSON) before the job gives
up its turn; the job's next attempt finds it there and commits it as it is, so the provider is
called again only when no answer was received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError

from shared.audit.writer import event_payload_parts
from shared.db import TRANSIENT_DB_ERRORS
from shared.ids import receipt_id as new_receipt_id
from shared.logging import get_logger
from shared.receipts.build import CallRecord, finish
from shared.resources import Resources

log = get_logger(__name__)

HELD_PREFIX = "ainfera:held:"
HELD_TTL_S = 7 * 24 * 3600
_BACKOFF_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


def held_key(job_id: str) -> str:
    return f"{HELD_PREFIX}{job_id}"


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one finished job writes, as JSON-safe values: what `finish_dispatch` takes, and
    what the caller is answered with once it is durable."""

    job: dict[str, Any]
    receipt: dict[str, Any]
    event_type: str
    prefix: str
    suffix: str
    http_status: int
    body: dict[str, Any]

    def rows(self) -> dict[str, Any]:
        return {"job": self.job, "receipt": self.receipt, "event_type": self.event_type, "prefix": self.prefix,
                "suffix": self.suffix}

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @staticmethod
    def from_json(raw: bytes) -> Commit:
        return Commit(**orjson.loads(raw))


def build_commit(res: Resources, call: CallRecord, *, job_id: str, tenant_id: Any, kind: str,
                 request: dict[str, Any], submitted_at: Any, latency_ms: int, attempt: int) -> Commit:
    """The rows of a finished call: the job (its answer as JSON text), the signed receipt, the event."""
    now = res.clock()
    done = finish(call, job_id=job_id, tenant_id=tenant_id, request=request, receipt_id=new_receipt_id(),
                  latency_ms=latency_ms, now=now)
    sig = res.signer.signature_of(done.receipt.public())
    receipt = dataclasses.replace(done.receipt, signature=sig["value"], signing_kid=sig["kid"])
    prefix, suffix = event_payload_parts(
        tenant_id=tenant_id, event_type=done.event_type, fields=done.event_fields, now=now, job_id=job_id
    )
    job_row = {
        "id": job_id,
        "tenant_id": str(tenant_id),
        "kind": kind,
        "status": done.receipt.status.value,
        "requested_model": done.receipt.requested_model,
        # JSON text, not a nested object: jsonb could not hold a provider's U+0000 (see 0007).
        "response": orjson.dumps(done.body).decode(),
        "http_status": done.http_status,
        "receipt_id": done.receipt.id,
        "created_at": submitted_at.isoformat(),
        "finished_at": now.isoformat(),
        "attempt": attempt,
    }
    return Commit(job_row, receipt.row(), done.event_type, prefix, suffix, done.http_status, done.body)


async def write_commit(res: Resources, commit: Commit) -> bool:
    """Write `commit` once; True when this call finished the job, False when it had been already
    (or a later attempt holds it). Raises a transient database error only after retrying for
    `commit_retry_s` and holding the commit in Redis for the job's next attempt."""
    job_id = str(commit.job["id"])
    started = time.monotonic()
    tries = 0
    while True:
        try:
            return await res.finisher.finish(**commit.rows())
        except TRANSIENT_DB_ERRORS as e:
            if time.monotonic() - started >= res.settings.commit_retry_s:
                await hold(res, commit)
                raise
            delay = _BACKOFF_S[min(tries, len(_BACKOFF_S) - 1)]
            tries += 1
            log.warning("commit_retry", job_id=job_id, attempt=tries, error=type(e).__name__, delay_s=delay)
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            await hold(res, commit)  # the job is being stopped mid-write: keep the answer for its next run
            raise


async def hold(res: Resources, commit: Commit) -> None:
    """Keep a commit that could not be written, for the job's next attempt. Best effort."""
    try:
        await res.redis.set(held_key(str(commit.job["id"])), commit.to_json(), ex=HELD_TTL_S)
        log.warning("commit_held", job_id=commit.job["id"])
    except (RedisError, OSError) as e:
        log.error("commit_hold_failed", job_id=commit.job["id"], error=type(e).__name__)


async def take_held(res: Resources, job_id: str) -> Commit | None:
    """A commit an earlier attempt of this job could not write, if one is held."""
    raw = await res.redis.get(held_key(job_id))
    return Commit.from_json(raw) if raw is not None else None


async def drop_held(res: Resources, job_id: str) -> None:
    try:
        await res.redis.delete(held_key(job_id))
    except (RedisError, OSError) as e:  # it expires on its own; a later take finds the job finished
        log.warning("commit_drop_failed", job_id=job_id, error=type(e).__name__)
