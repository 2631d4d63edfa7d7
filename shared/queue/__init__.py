"""The queue layer: arq 0.28.0 (pinned) extended so that nobody pays a fixed polling delay.

Modules: `names` (queues, channels, and the hash tags that keep a queue in one
slot), `serializer` (JSON, no pickle), `pool` (the queue's clients: one Redis,
or on a Redis Cluster a client per queue pinned to its slot), `enqueue` (one
round trip + wake-up; bulk through pipelines), `claim` (one-round-trip Lua
claim), `worker` (WakingWorker, an arq Worker subclass), `subscription` (a
resubscribing, optionally sharded, pub/sub connection), `notify` (completion
notices and CompletionWaiters). Lua scripts run through redis-py's script
objects and declare every key they touch.
Redis keys keep arq's prefixes, with the queue's hash tag in each job's arq id;
a claim is an entry of the queue's running set rather than arq's in-progress key.

Delivery semantics the rest of the system relies on:

- At least once. A job is marked in progress in its queue's running set
  (until the longest job timeout + 10 s from the claim) when claimed;
  if its worker dies (SIGKILL, OOM, lost host) the claim lapses and another
  worker runs the job again, with `job_try` one higher. A completion notice
  can also be sent twice. Every side effect must therefore be idempotent on
  the job id (one receipt, one audit event, one charge per job).
- Retries are arq's: raising `arq.Retry(defer=...)` (or a worker cancelled
  at shutdown) runs the job again until `max_tries`; then it fails with
  "max N retries exceeded".
- Timeouts are arq's: a job running past its timeout (the function's, else
  the worker's `job_timeout`) is cancelled and fails with TimeoutError; it is
  not retried. Always set explicit timeouts.
- Enqueue is idempotent on the job id: a second enqueue of an id whose job
  or kept result exists changes nothing and returns False.
- Jobs that wait past their expiry (default one day after they were due)
  fail as expired instead of running.
- Wake-ups and completion notices are pub/sub: fast, not durable. A lost
  wake-up costs at most the worker's `fallback_poll_s`; a lost completion
  notice is caught by the waiter's re-check of Postgres (CompletionWaiters
  reports reconnects so that re-check can happen at once).
- JSON only: job kwargs and results must be JSON-safe (see
  `serializer.NotJSONSafeError`); enqueue refuses anything else.
"""
