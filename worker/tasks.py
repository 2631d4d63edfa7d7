"""arq task functions: thin wrappers that call the shared use-case and report the outcome.

This is the worker's process boundary for jobs: connection failures of Postgres or
Redis become arq retries (the job runs again later and the use-case is idempotent);
anything unanticipated is logged and answered with a generic 500 so no caller waits
for a timeout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from arq import Retry
from redis.exceptions import RedisError

from shared.db import TRANSIENT_DB_ERRORS
from shared.dispatch import DispatchJob, Outcome, run_dispatch
from shared.errors import InternalError
from shared.logging import get_logger
from shared.queue.notify import notify_done
from worker.context import resources

log = get_logger(__name__)

RETRYABLE_INFRA_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, RedisError)
RETRY_BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30, 30, 30)
DISPATCH_MAX_TRIES = len(RETRY_BACKOFF_S) + 1


async def dispatch(
    ctx: dict[str, Any],
    *,
    job_id: str,
    tenant_id: str,
    kind: str,
    request: dict[str, Any],
    submitted_at: str,
    reply_to: str | None = None,
) -> None:
    res = resources(ctx)
    job_try: int = ctx.get("job_try", 1)
    job = DispatchJob(
        job_id=job_id,
        tenant_id=UUID(tenant_id),
        kind=kind,
        request=request,
        submitted_at=datetime.fromisoformat(submitted_at),
    )
    try:
        outcome = await run_dispatch(res, job, job_try=job_try)
    except RETRYABLE_INFRA_ERRORS as e:
        delay = RETRY_BACKOFF_S[min(job_try - 1, len(RETRY_BACKOFF_S) - 1)]
        log.warning("job_retry_scheduled", job_id=job_id, job_try=job_try, delay_s=delay, error=type(e).__name__)
        raise Retry(defer=delay) from e
    except Exception:
        # Process boundary: a bug must not leave a caller waiting for its timeout.
        log.exception("job_crashed", job_id=job_id)
        err = InternalError("The server had an error while processing your request.")
        outcome = Outcome(http_status=err.status, body={**err.envelope(), "ainfera": {"job_id": job_id}})
        await _reply(res.redis, reply_to, job_id, outcome)
        raise
    await _reply(res.redis, reply_to, job_id, outcome)


async def _reply(redis: Any, reply_to: str | None, job_id: str, outcome: Outcome) -> None:
    if reply_to:
        await notify_done(redis, reply_to, job_id, outcome.to_message())
