"""Every name the system uses on Redis: the queues, the pub/sub channels, and the keys of the
layers above the queue (learned statistics, held commits, the supervisor's lock and epoch).

arq's own per-job keys keep arq's prefixes (`arq:job:<id>`, `arq:result:<id>`, `arq:retry:<id>`),
but the id in them is the queue's *arq id* of the job: the job id behind the queue's hash tag
(`arq_id`). So a queue and everything a script or transaction touches with it (its jobs, their
results and retry counters, its running set, its health key, its wake-up channel)
hash to one slot of a Redis Cluster, and each queue may live on its own master.
"""

from __future__ import annotations

import zlib
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
# A waiting process's channel is in one of this many slots (its hash tag `{done-<n>}`), not in a
# slot of its own: a worker keeps one pinned client per slot it publishes to, and gateways come
# and go with new names, so the number of those clients stays bounded.
COMPLETION_SHARDS = 16
# Workers announce finished async jobs on a channel every gateway listens on (GET /v1/jobs?wait=).
ASYNC_WAITERS_INSTANCE = "async"


def slot_tag(name: str) -> str:
    """What Redis Cluster hashes for `name`: the text of its first non-empty `{...}`, else all of it.

    A name without braces hashes exactly like a name tagged with itself, so a queue keeps its key
    (`ainfera:queue:interactive`) and the keys that go with it are tagged `{ainfera:queue:interactive}`.
    """
    start = name.find("{")
    if start != -1:
        end = name.find("}", start + 1)
        if end > start + 1:
            return name[start + 1:end]
    return name


def queue_scoped(queue_name: str, suffix: str) -> str:
    """A key or channel in the slot of `queue_name`: the queue's hash tag, then `suffix`."""
    return f"{{{slot_tag(queue_name)}}}{suffix}"


def arq_id(queue_name: str, job_id: str) -> str:
    """The id a job has in arq's keys on `queue_name`: its own id behind the queue's hash tag.

    The job's functions get their own id in their kwargs; only the queue layer (enqueue, claim,
    the reconciler's look-up) sees this one.
    """
    return queue_scoped(queue_name, job_id)


def running_key(queue_name: str) -> str:
    """The queue's running set: each claimed job's arq id, scored with when its claim lapses (ms).

    It replaces arq's `arq:in-progress:<id>` keys, whose names the claim script could not declare.
    """
    return queue_scoped(queue_name, ":running")


def health_key(queue_name: str) -> str:
    """arq's health-check key of the queue's workers (arq's default, `<queue>:health-check`, is in
    another slot)."""
    return queue_scoped(queue_name, ":health-check")


def wake_channel(queue_name: str, db: int) -> str:
    """The channel an enqueue publishes on so that idle workers of that queue claim at once.

    Pub/sub ignores the database number, so it is part of the name: a queue of
    the same name in another database (another test run, another deployment
    on the same server) does not wake our workers. In the queue's slot, so that
    a cluster can carry it as a sharded channel of the node that holds the queue.
    """
    return queue_scoped(queue_name, f"{WAKE_CHANNEL_SUFFIX}:{db}")


def completion_channel(instance: str) -> str:
    """The channel of one waiting process (one `CompletionWaiters`); workers publish notices there."""
    return f"{COMPLETION_CHANNEL_PREFIX}{{done-{zlib.crc32(instance.encode()) % COMPLETION_SHARDS}}}:{instance}"


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


def stream_cancel_key(reply_to: str, job_id: str) -> str:
    """Set by the gateway whose caller left a streamed job. In the slot of the gateway's channel
    (`reply_to`), so that the worker's publish of each chunk and its look at this key are one
    script on the node that holds both."""
    return queue_scoped(reply_to, f"{STREAM_CANCEL_PREFIX}{job_id}")
