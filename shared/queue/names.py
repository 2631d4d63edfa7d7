"""Every name the system uses on Redis: the queues, the pub/sub channels, and the keys of the
layers above the queue (learned statistics, held commits, the supervisor's lock and epoch).

arq's own keys (`arq:job:<id>`, `arq:in-progress:<id>`, ...) keep arq's layout (`arq.constants`).
"""

from __future__ import annotations

from enum import StrEnum


class QueueName(StrEnum):
    """The queues of the system; each one is an arq queue (a sorted set of job ids)."""

    # Synchronous callers wait on these jobs: never behind batch work.
    INTERACTIVE = "ainfera:queue:interactive"
    # Batch lines and asynchronous requests: throughput over latency.
    BATCH = "ainfera:queue:batch"
    # Scheduled catalog probes.
    PROBE = "ainfera:queue:probe"
    # The system's own housekeeping: the batch supervisor's tick, batch finalization, fanout
    # ticks and decisions. Kept apart because arq sizes a worker's in-progress lock by its
    # slowest function: a killed worker's dispatch jobs must come back in seconds, not after
    # the time a finalization may take.
    CONTROL = "ainfera:queue:control"


WAKE_CHANNEL_SUFFIX = ":wake"
COMPLETION_CHANNEL_PREFIX = "ainfera:done:"
# Workers announce finished async jobs on a channel every gateway listens on (GET /v1/jobs?wait=).
ASYNC_WAITERS_INSTANCE = "async"


def wake_channel(queue_name: str, db: int) -> str:
    """The channel an enqueue publishes on so that idle workers of that queue claim at once.

    Pub/sub ignores the database number, so it is part of the name: a queue of
    the same name in another database (another test run, another deployment
    on the same server) does not wake our workers.
    """
    return f"{queue_name}{WAKE_CHANNEL_SUFFIX}:{db}"


def completion_channel(instance: str) -> str:
    """The channel of one waiting process (one `CompletionWaiters`); workers publish notices there."""
    return f"{COMPLETION_CHANNEL_PREFIX}{instance}"


ASYNC_CHANNEL = completion_channel(ASYNC_WAITERS_INSTANCE)


# --- keys of the layers above the queue ----------------------------------------------------------

# Learned routing statistics (shared/routing/learned.py). One hash tag for all of them: the script
# that records a sample updates a model's window and the published medians together, so on a
# Redis Cluster they must share a slot.
STATS_PREFIX = "ainfera:{stats}"
STATS_OLD_PREFIX = "ainfera:stats"  # before the hash tag: what a rebuild still clears
HELD_PREFIX = "ainfera:held:"  # commits a job could not write, for its next attempt (shared/commit.py)
STREAM_CANCEL_PREFIX = "ainfera:stream-cancel:"  # a streamed job whose caller left (shared/queue/stream_relay.py)
SUPERVISOR_LOCK_KEY = "ainfera:batch-supervisor:lock"  # one supervisor tick at a time
# Bumped by every change an admin makes to API keys; each process compares it at most once a second
# (`shared.auth.directory`), so a revocation holds within a second even where a NOTIFY was missed.
KEYS_VERSION_KEY = "ainfera:api-keys:version"
EPOCH_KEY = "ainfera:epoch"  # disappears when Redis loses its data: the reconciler then does a full pass


def stream_cancel_key(job_id: str) -> str:
    return f"{STREAM_CANCEL_PREFIX}{job_id}"
