"""Committing a finished job: its outcome, signed receipt and audit event, written once, and never
lost to a database that is briefly away.

`build_commit` turns a finished call into exactly what goes to Postgres (pure, no I/O).
`write_commit` sends it through the group commit (`shared/db/group_commit.py`) and retries a failed write with the
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
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from redis.exceptions import RedisError

from shared.audit.fields import job_event
from shared.audit.writer import event_payload_parts
from shared.chat.request import ChatCompletionRequest
from shared.db import TRANSIENT_DB_ERRORS
from shared.ids import receipt_id as new_receipt_id
from shared.jobs import FinishedJob, JobKind, JobStatus
from shared.logging import get_logger
from shared.queue.names import HELD_PREFIX
from shared.receipts.build import receipt_of
from shared.receipts.call import CallRecord, charge_of
from shared.receipts.response import reported_params, response_body
from shared.receipts.types import Receipt
from shared.resources import Resources
from shared.spend.leases import LeaseHold

log = get_logger(__name__)

HELD_TTL_S = 7 * 24 * 3600
_BACKOFF_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


def held_key(job_id: str) -> str:
    return f"{HELD_PREFIX}{job_id}"


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one finished job writes (its row, signed receipt and audit event), and what the
    caller is answered with once it is durable."""

    job: FinishedJob
    receipt: Receipt
    event_type: str
    prefix: str  # the audit payload around its seq (see shared.audit.writer)
    suffix: str
    body: dict[str, Any]
    lease: LeaseHold | None = None  # what the call took from its worker's budget lease, to settle

    @property
    def http_status(self) -> int:
        return self.job.http_status

    def to_json(self) -> bytes:
        return orjson.dumps({"job": self.job.row(), "receipt": self.receipt.row(), "event_type": self.event_type,
                             "prefix": self.prefix, "suffix": self.suffix, "body": self.body,
                             "lease": self.lease.row() if self.lease else None})

    @staticmethod
    def from_json(raw: bytes) -> Commit:
        d = orjson.loads(raw)
        return Commit(FinishedJob.from_row(d["job"]), Receipt.from_row(d["receipt"]), d["event_type"], d["prefix"],
                      d["suffix"], d["body"], LeaseHold.from_row(d.get("lease")))

    def taken_over(self, attempt: int) -> Commit:
        """This commit, written by a later attempt that now holds the job's lease."""
        return dataclasses.replace(self, job=dataclasses.replace(self.job, attempt=attempt))


def build_commit(res: Resources, call: CallRecord, *, job_id: str, tenant_id: UUID, kind: JobKind,
                 request: ChatCompletionRequest | None, submitted_at: datetime, latency_ms: int,
                 attempt: int, key_id: UUID | None = None) -> Commit:
    """The rows of a finished call: the job (its answer as JSON text), the signed receipt, the event."""
    now = res.clock()
    receipt_id = new_receipt_id()
    charge = charge_of(call)
    requested = request.model if request else ""
    status, body = response_body(call, job_id=job_id, receipt_id=receipt_id, requested_model=requested,
                                 charge=charge, now=now, legacy_functions=bool(request and request.functions),
                                 dropped_params=reported_params(request, call),
                                 explain=bool(request and request.routing_hint and request.routing_hint.explain))
    receipt = receipt_of(call, job_id=job_id, tenant_id=tenant_id, request=request, receipt_id=receipt_id,
                         charge=charge, latency_ms=latency_ms, now=now)
    sig = res.signer.signature_of(receipt.public())
    receipt = dataclasses.replace(receipt, signature=sig["value"], signing_kid=sig["kid"])
    event_type, fields = job_event(call, receipt, request)
    prefix, suffix = event_payload_parts(tenant_id=tenant_id, event_type=event_type, fields=fields, now=now,
                                         job_id=job_id)
    job = FinishedJob(
        id=job_id, tenant_id=tenant_id, kind=kind,
        status=(JobStatus.SUCCEEDED if call.succeeded else
                JobStatus.CANCELLED if call.cancelled else JobStatus.FAILED),
        requested_model=requested,
        # JSON text, not a nested object: jsonb could not hold a provider's U+0000 (see 0007).
        response=orjson.dumps(body).decode(),
        http_status=status, receipt_id=receipt_id, created_at=submitted_at, finished_at=now, attempt=attempt,
        key_id=key_id,
    )
    return Commit(job, receipt, event_type, prefix, suffix, body, call.lease)


async def write_commit(res: Resources, commit: Commit) -> bool:
    """Write `commit` once; True when this call finished the job, False when it had been already
    (or a later attempt holds it). Raises a transient database error only after retrying for
    `commit_retry_s` and holding the commit in Redis for the job's next attempt."""
    with res.tracing.span("commit") as span:
        written = await _write(res, commit)
        if span.is_recording():
            span.set_attributes({"ainfera.job.status": commit.job.status.value, "ainfera.written": written,
                                 "ainfera.receipt_id": commit.receipt.id})
        return written


async def _write(res: Resources, commit: Commit) -> bool:
    job_id = commit.job.id
    started = time.monotonic()
    tries = 0
    while True:
        try:
            return await res.group_commit.finish(job=commit.job, receipt=commit.receipt,
                                                 event_type=commit.event_type, prefix=commit.prefix,
                                                 suffix=commit.suffix, lease=commit.lease)
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
        await res.redis.set(held_key(commit.job.id), commit.to_json(), ex=HELD_TTL_S)
        log.warning("commit_held", job_id=commit.job.id)
    except (RedisError, OSError) as e:
        log.error("commit_hold_failed", job_id=commit.job.id, error=type(e).__name__)


async def take_held(res: Resources, job_id: str) -> Commit | None:
    """A commit an earlier attempt of this job could not write, if one is held."""
    raw = await res.redis.get(held_key(job_id))
    return Commit.from_json(raw) if raw is not None else None


async def drop_held(res: Resources, job_id: str) -> None:
    try:
        await res.redis.delete(held_key(job_id))
    except (RedisError, OSError) as e:  # it expires on its own; a later take finds the job finished
        log.warning("commit_drop_failed", job_id=job_id, error=type(e).__name__)
