"""Every Prometheus metric of the system, defined once, in one registry per process.

One `Metrics` per process (the gateway's and each worker process's `Resources` hold it); its own
`CollectorRegistry` rather than prometheus-client's global one, so two processes' worth of
metrics in one test process (a gateway and a worker) never mix, and no module holds mutable state.
The names, label sets and bounds are the table in docs/metrics.md; a label value reaches a metric
only through `shared.metrics.labels`.

On the hot path (a request, a dispatch, an upstream call) each method looks up a pre-bound label
child in a dict keyed by a tuple of label values, so a call costs a dict lookup and an increment
rather than prometheus-client's label validation; the dicts are as bounded as the labels.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from shared.metrics.labels import HTTP_METHODS, CatalogLabel, Folded, error_codes, status_label

# Seconds. Gateway requests: a cached read answers in a millisecond, a synchronous call in the
# upstream's time (seconds), a long-poll in up to a minute.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Queue wait: a few milliseconds when a worker is free; seconds to minutes behind a batch.
QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600, 3600)
# Upstream calls and what callers wait end to end: from tens of milliseconds to minutes (reasoning).
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=MetricWrapperBase)

JOB_KINDS = Folded(("sync", "stream", "async", "batch", "probe"))
AUDIT_EVENT_TYPES = Folded(("inference.routed", "inference.failed", "inference.rejected", "model.activated",
                            "model.deactivated"))
JOB_OUTCOMES = Folded(("succeeded", "failed", "cancelled"))


class Children(Generic[K, M]):
    """The label children of one metric, bound once per distinct key."""

    __slots__ = ("_bind", "_children", "_metric")

    def __init__(self, metric: M, bind: Callable[[K], tuple[str, ...]]) -> None:
        self._metric = metric
        self._bind = bind
        self._children: dict[K, M] = {}

    def __call__(self, key: K) -> M:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._metric.labels(*self._bind(key))
        return child


class Metrics:
    """The metrics of one process. Gauges of shared state (queue depth, batch lines, the last
    fanout run) are set at scrape time by `shared.metrics.scrape`; worker slots by
    `shared.metrics.workers`; everything else is counted where it happens."""

    def __init__(self) -> None:
        # No `*_created` series: they would double every counter and histogram for a timestamp
        # Prometheus does not need (prometheus-client's switch is process-wide; this sets it the same way).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.models = CatalogLabel()
        self.providers = CatalogLabel()
        self.codes = Folded(error_codes())
        ProcessCollector(registry=r)  # CPU, memory and files of this process, read from /proc when scraped

        # --- gateway ---------------------------------------------------------------------
        self.http_requests = Counter(
            "ainfera_http_requests", "Gateway requests by route template, status and tenant class.",
            ("method", "route", "status", "tenant_class"), registry=r)
        self.http_duration = Histogram(
            "ainfera_http_request_duration_seconds", "Gateway request latency by route template (until the "
            "response ended: a stream's whole length).", ("method", "route"), buckets=REQUEST_BUCKETS, registry=r)
        self.sync_end_to_end = Histogram(
            "ainfera_sync_end_to_end_seconds", "A synchronous call from enqueue to its outcome at the gateway.",
            buckets=UPSTREAM_BUCKETS, registry=r)
        self.stream_first_token = Histogram(
            "ainfera_stream_first_token_seconds", "A streamed call from enqueue to its first chunk at the gateway.",
            buckets=UPSTREAM_BUCKETS, registry=r)
        self.rate_limited = Counter(
            "ainfera_rate_limit_hits", "Calls refused (interactive) or batch feeds held back (batch) by a rate limit.",
            ("lane", "scope", "unit"), registry=r)

        # --- queue -----------------------------------------------------------------------
        self.queue_wait = Histogram(
            "ainfera_queue_wait_seconds", "From enqueue to a worker starting the job (first attempts).",
            ("queue", "kind"), buckets=QUEUE_BUCKETS, registry=r)
        # ainfera_queue_jobs, ainfera_queue_job_retries, ainfera_worker_slots: shared.metrics.workers.
        self.reconciler_requeued = Counter(
            "ainfera_reconciler_requeued", "Stored jobs the reconciler queued again (their queue entry was lost).",
            registry=r)
        self.dispatch_outcomes = Counter(
            "ainfera_dispatch_jobs", "Dispatch jobs committed, by kind, status and error code ('' on success).",
            ("kind", "status", "code"), registry=r)

        # --- upstream --------------------------------------------------------------------
        self.upstream_calls = Counter("ainfera_upstream_calls", "Calls to a provider (one per candidate tried).",
                                      ("provider", "model", "result"), registry=r)
        self.upstream_errors = Counter("ainfera_upstream_errors", "Failed provider calls by error code.",
                                       ("provider", "model", "code"), registry=r)
        self.upstream_latency = Histogram(
            "ainfera_upstream_latency_seconds", "Latency of successful provider calls (retries included).",
            ("provider", "model"), buckets=UPSTREAM_BUCKETS, registry=r)
        self.upstream_retries = Counter("ainfera_upstream_retries", "Requests re-sent to the same provider.",
                                        ("provider",), registry=r)
        self.fallbacks = Counter("ainfera_fallbacks", "ainfera-auto moving on from a failed candidate.",
                                 ("provider", "model"), registry=r)

        # --- money and trust -------------------------------------------------------------
        self.spend = Counter("ainfera_spend_usd", "Spend billed on receipts, in USD.", ("provider", "model"),
                             registry=r)
        self.tokens = Counter("ainfera_tokens", "Tokens billed on receipts.", ("provider", "model", "direction"),
                              registry=r)
        self.audit_appends = Counter("ainfera_audit_appends", "Audit events appended to a hash chain.",
                                     ("event_type",), registry=r)
        self.audit_last_append = Gauge(
            "ainfera_audit_last_append_timestamp_seconds", "When this process last appended an audit event "
            "(checkpoints are signed from the head on request, so time() minus this is the newest one's age).",
            registry=r)
        self.budget_refusals = Counter("ainfera_budget_refusals", "Calls refused (402) because no budget had room.",
                                       ("kind",), registry=r)

        # --- scrape-time state (set by shared.metrics.scrape) ----------------------------
        self.queue_depth = Gauge("ainfera_queue_depth", "Jobs in the queue (due, deferred and running).",
                                 ("queue",), registry=r)
        self.queue_oldest_age = Gauge("ainfera_queue_oldest_age_seconds", "Age of the oldest due job in the queue.",
                                      ("queue",), registry=r)
        self.batch_lines = Gauge("ainfera_batch_lines", "Lines of open batches by state.", ("state",), registry=r)
        self.fanout_last_run = Gauge("ainfera_fanout_last_run_probes", "The last completed fanout run's probes.",
                                     ("outcome",), registry=r)
        self.scrape_errors = Counter("ainfera_scrape_errors", "State that could not be read for a scrape.",
                                     ("source",), registry=r)

        # Pre-bound children for the hot path.
        self._requests = Children[tuple[str, str, int, str], Counter](
            self.http_requests, lambda k: (HTTP_METHODS(k[0]), k[1], status_label(k[2]), k[3]))
        self._durations = Children[tuple[str, str], Histogram](
            self.http_duration, lambda k: (HTTP_METHODS(k[0]), k[1]))
        self._queue_wait = Children[tuple[str, str], Histogram](self.queue_wait, lambda k: (k[0], JOB_KINDS(k[1])))
        self._outcomes = Children[tuple[str, str, str], Counter](
            self.dispatch_outcomes, lambda k: (JOB_KINDS(k[0]), JOB_OUTCOMES(k[1]), self.codes(k[2]) if k[2] else ""))
        self._calls = Children[tuple[str, str, str], Counter](
            self.upstream_calls, lambda k: (self.providers(k[0]), self.models(k[1]), k[2]))
        self._errors = Children[tuple[str, str, str], Counter](
            self.upstream_errors, lambda k: (self.providers(k[0]), self.models(k[1]), self.codes(k[2])))
        self._latency = Children[tuple[str, str], Histogram](
            self.upstream_latency, lambda k: (self.providers(k[0]), self.models(k[1])))
        self._retries = Children[str, Counter](self.upstream_retries, lambda k: (self.providers(k),))
        self._fallbacks = Children[tuple[str, str], Counter](
            self.fallbacks, lambda k: (self.providers(k[0]), self.models(k[1])))
        self._spend = Children[tuple[str, str], Counter](self.spend, lambda k: (self.providers(k[0]),
                                                                                self.models(k[1])))
        self._tokens = Children[tuple[str, str, str], Counter](
            self.tokens, lambda k: (self.providers(k[0]), self.models(k[1]), k[2]))
        self._appends = Children[str, Counter](self.audit_appends, lambda k: (AUDIT_EVENT_TYPES(k),))

    # --- gateway -------------------------------------------------------------------------

    def request(self, method: str, route: str, status: int, tenant_class: str, seconds: float) -> None:
        """One gateway request; `route` is its route template (never the raw path)."""
        self._requests((method, route, status, tenant_class)).inc()
        self._durations((method, route)).observe(seconds)

    # --- worker --------------------------------------------------------------------------

    def waited(self, queue: str, kind: str, seconds: float) -> None:
        self._queue_wait((queue, kind)).observe(max(0.0, seconds))

    def dispatched(self, kind: str, status: str, code: str | None) -> None:
        self._outcomes((kind, status, code or "")).inc()

    def upstream_ok(self, provider: str, model: str, seconds: float, attempts: int) -> None:
        self._calls((provider, model, "ok")).inc()
        self._latency((provider, model)).observe(seconds)
        if attempts > 1:
            self._retries(provider).inc(attempts - 1)

    def upstream_failed(self, provider: str, model: str, code: str, attempts: int) -> None:
        self._calls((provider, model, "error")).inc()
        self._errors((provider, model, code)).inc()
        if attempts > 1:
            self._retries(provider).inc(attempts - 1)

    def fell_back(self, provider: str, model: str) -> None:
        self._fallbacks((provider, model)).inc()

    def billed(self, provider: str, model: str, cost_usd: Decimal | float, input_tokens: int,
               output_tokens: int) -> None:
        if cost_usd:
            self._spend((provider, model)).inc(float(cost_usd))
        if input_tokens:
            self._tokens((provider, model, "input")).inc(input_tokens)
        if output_tokens:
            self._tokens((provider, model, "output")).inc(output_tokens)

    def appended(self, event_type: str) -> None:
        self._appends(event_type).inc()
        self.audit_last_append.set_to_current_time()
