"""Names on Redis that the queue layer owns: the queues and the pub/sub channels derived from them.

arq's own keys (`arq:job:<id>`, `arq:in-progress:<id>`, ...) keep arq's layout.
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
