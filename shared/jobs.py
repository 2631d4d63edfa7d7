"""The job: the unit of work the whole system turns around, and every state it can be in.

A job is one chat-completions request to dispatch. It is born in the gateway (a synchronous
call, an async call, a batch line) or in a fanout run (a probe, which has its own path), goes
through a queue as `DispatchJob.to_kwargs()`, is taken by a worker as `from_kwargs()` (or from
its stored row), and ends in one `Outcome`, stored on its `jobs` row (`JobRow`).

States (`JobStatus`): queued -> running -> succeeded | failed, and queued -> cancelled | expired
for batch lines that never started. A synchronous job has no row until it finishes (or until a
re-delivery registers its attempt). Every task a worker runs is declared once in `TASKS`, with
its queue, timeout and tries, for the enqueuers and for `worker/main.py` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from shared.chat.request import ChatCompletionRequest, validate_chat_request
from shared.errors import InvalidRequest
from shared.queue.names import QueueName
from shared.routing.limits import Limits
from shared.settings import Settings


class JobKind(StrEnum):
    SYNC = "sync"  # a caller waits on the connection; the request travels in the queue entry
    ASYNC = "async"  # answered 202 at once; stored before it runs
    BATCH = "batch"  # one line of a batch; stored before it runs
    PROBE = "probe"  # a fanout probe; bills no tenant, teaches the router nothing


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a batch line the batch's cancellation closed before it started
    EXPIRED = "expired"  # a batch line its completion window closed before it started

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


STORED_KINDS = frozenset({JobKind.ASYNC, JobKind.BATCH})  # accepted before they run: stored first


@dataclass(frozen=True, slots=True)
class DispatchJob:
    """What a worker needs to run one job. The request is validated, typed; None when a stored
    job's request could not be read back (the job then fails on its own, `unreadable_request`)."""

    job_id: str
    tenant_id: UUID
    kind: JobKind
    request: ChatCompletionRequest | None
    submitted_at: datetime
    reply_to: str | None = None  # the waiting gateway's completion channel (synchronous jobs)
    key_id: UUID | None = None  # the API key that submitted it or its batch (None: a probe)
    key_limits: Limits | None = None  # that key's own limits, as the key had them at submission
    traceparent: str | None = None  # the W3C trace context of its enqueue, when tracing is on

    def to_kwargs(self) -> dict[str, Any]:
        """The queue entry's JSON kwargs: the only way a job is serialised."""
        kwargs: dict[str, Any] = {
            "job_id": self.job_id,
            "tenant_id": str(self.tenant_id),
            "kind": self.kind.value,
            "request": self.request.model_dump(exclude_unset=True, mode="json") if self.request else None,
            "submitted_at": self.submitted_at.isoformat(),
            "reply_to": self.reply_to,
            "key_id": str(self.key_id) if self.key_id else None,
            "key_limits": self.key_limits.to_json() if self.key_limits else None,
        }
        if self.traceparent:
            kwargs["traceparent"] = self.traceparent
        return kwargs

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> DispatchJob:
        return cls(
            job_id=kwargs["job_id"],
            tenant_id=UUID(kwargs["tenant_id"]),
            kind=JobKind(kwargs["kind"]),
            request=read_request(kwargs.get("request")),
            submitted_at=datetime.fromisoformat(kwargs["submitted_at"]),
            reply_to=kwargs.get("reply_to"),
            key_id=UUID(kwargs["key_id"]) if kwargs.get("key_id") else None,
            key_limits=Limits.from_json(kwargs["key_limits"]) if kwargs.get("key_limits") is not None else None,
            traceparent=kwargs.get("traceparent"),
        )


def read_request(stored: Any) -> ChatCompletionRequest | None:
    """A request as it was stored or queued, validated again (a few microseconds): a row an older
    version or a hand wrote, which no longer passes, is None rather than an exception later."""
    if stored is None:
        return None
    try:
        return validate_chat_request(stored)
    except InvalidRequest:
        return None


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job's row in Postgres, as the readers of outcomes see it."""

    id: str
    tenant_id: UUID
    kind: JobKind
    status: JobStatus
    requested_model: str
    response: dict[str, Any] | None  # the answer; stored as the JSON text it was answered with
    http_status: int | None
    receipt_id: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """The `jobs` row a job writes when it finishes (`finish_dispatch`); its fields are the table's
    columns of the same names, which a test checks."""

    id: str
    tenant_id: UUID
    kind: JobKind
    status: JobStatus
    requested_model: str
    response: str  # the answer as JSON text (text, not jsonb: lossless, U+0000 included)
    http_status: int
    receipt_id: str
    created_at: datetime
    finished_at: datetime
    attempt: int  # the lease it finished under
    key_id: UUID | None = None  # the API key that submitted it or its batch (None: a probe)

    def row(self) -> dict[str, Any]:
        """JSON-safe column values."""
        return {"id": self.id, "tenant_id": str(self.tenant_id), "kind": self.kind.value, "status": self.status.value,
                "requested_model": self.requested_model, "response": self.response, "http_status": self.http_status,
                "receipt_id": self.receipt_id, "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat(), "attempt": self.attempt,
                "key_id": str(self.key_id) if self.key_id else None}

    @staticmethod
    def from_row(row: dict[str, Any]) -> FinishedJob:
        return FinishedJob(
            id=row["id"], tenant_id=UUID(row["tenant_id"]), kind=JobKind(row["kind"]), status=JobStatus(row["status"]),
            requested_model=row["requested_model"], response=row["response"], http_status=row["http_status"],
            receipt_id=row["receipt_id"], created_at=datetime.fromisoformat(row["created_at"]),
            finished_at=datetime.fromisoformat(row["finished_at"]), attempt=row["attempt"],
            key_id=UUID(row["key_id"]) if row.get("key_id") else None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the caller gets: an HTTP status and the JSON body (completion or error envelope)."""

    http_status: int
    body: dict[str, Any]
    replayed: bool = False  # True when the job had already finished (a second delivery, a re-check)

    @property
    def meta(self) -> dict[str, Any]:
        block: dict[str, Any] = self.body.get("ainfera") or {}
        return block

    def to_message(self) -> bytes:
        """The completion notice a worker publishes to the waiting gateway."""
        return orjson.dumps({"status": self.http_status, "body": self.body})

    @staticmethod
    def from_message(raw: bytes) -> Outcome:
        message = orjson.loads(raw)
        return Outcome(http_status=int(message["status"]), body=message["body"])

    @staticmethod
    def from_row(row: JobRow) -> Outcome | None:
        """The stored answer of a finished job, or None while it has none."""
        if row.response is None:
            return None
        return Outcome(http_status=row.http_status or 200, body=row.response, replayed=True)


# --- the tasks workers run -------------------------------------------------------------------

JOB_TIMEOUT_MARGIN_S = 30.0  # a dispatch job's database work on top of its upstream deadline


def _dispatch_timeout(settings: Settings) -> float:
    return settings.upstream_deadline_s + JOB_TIMEOUT_MARGIN_S


def _probe_timeout(settings: Settings) -> float:
    return settings.fanout_probe_timeout_s + JOB_TIMEOUT_MARGIN_S


def _job_tries(settings: Settings) -> int:
    # One try more than a job may be attempted: the last delivery is the one that records the job
    # as failed for good (arq itself would drop it silently, with no receipt).
    return settings.job_max_attempts + 1


def _fixed(value: float) -> Callable[[Settings], float]:
    return lambda _settings: value


def _once(_settings: Settings) -> int:
    return 1


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One kind of task: its arq function name, its queue, and how long and how often it may run."""

    name: str
    queue: QueueName
    timeout_s: Callable[[Settings], float]
    max_tries: Callable[[Settings], int]


DISPATCH = TaskSpec("dispatch", QueueName.INTERACTIVE, _dispatch_timeout, _job_tries)
DISPATCH_STORED = TaskSpec("dispatch_stored", QueueName.BATCH, _dispatch_timeout, _job_tries)
PROBE_MODEL = TaskSpec("probe_model", QueueName.PROBE, _probe_timeout, _job_tries)
PLAN_FANOUT = TaskSpec("plan_fanout", QueueName.PROBE, _probe_timeout, _job_tries)
FINALIZE_BATCH = TaskSpec("finalize_batch", QueueName.CONTROL, _fixed(600.0), _job_tries)
SUPERVISE_BATCHES = TaskSpec("supervise_batches", QueueName.CONTROL, _fixed(60.0), _once)
DECIDE_FANOUT = TaskSpec("decide_fanout", QueueName.CONTROL, _fixed(300.0), _job_tries)
FANOUT_TICK = TaskSpec("fanout_tick", QueueName.CONTROL, _fixed(120.0), _once)

TASKS = (DISPATCH, DISPATCH_STORED, PROBE_MODEL, PLAN_FANOUT, FINALIZE_BATCH, SUPERVISE_BATCHES, DECIDE_FANOUT,
         FANOUT_TICK)
