"""The one settings class. Every process reads it once at its entry point and passes it down.

All variables use the `AINFERA_` prefix. Two exceptions: provider credentials live under the
names the catalog's `api_key_env` column gives (`OPENAI_API_KEY`, `GROQ_API_KEY`, ...), and
tracing is turned on by OpenTelemetry's standard `OTEL_*` variables (`shared/tracing.py`).
Both are collected here, once, so that nothing else in the code base reads the environment
(the OpenTelemetry SDK, once tracing is on, reads the rest of its own variables itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROVIDER_KEY_SUFFIX = "_API_KEY"
TRACES_EXPORTERS = ("otlp", "console")  # what OTEL_TRACES_EXPORTER may name here (and "none")


def _provider_keys_from_environ() -> dict[str, SecretStr]:
    """Every `*_API_KEY` variable that is not one of ours, keyed by variable name."""
    return {
        name: SecretStr(value)
        for name, value in os.environ.items()
        if name.endswith(PROVIDER_KEY_SUFFIX) and not name.startswith("AINFERA_") and value
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AINFERA_", extra="ignore", frozen=True, populate_by_name=True)

    # --- where things are ----------------------------------------------------------------
    # Where the pools connect: Postgres itself, or a pooler in front of it. With PgBouncer in
    # transaction pooling mode set `database_pooler=pgbouncer` (no named prepared statements) and
    # point `database_direct_url` at Postgres itself, for what needs a session of its own
    # (LISTEN for cache invalidation, migrations' session lock, admin commands).
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ainfera"
    database_direct_url: str | None = None  # unset: database_url
    database_pooler: Literal["none", "pgbouncer"] = "none"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The url names one node of a Redis Cluster (any: the others are discovered). Needs Redis 7.
    redis_cluster: bool = False
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    sim_host: str = "127.0.0.1"
    sim_port: int = 8100
    # When set, every upstream call goes to the simulated provider at this base URL
    # instead of the provider's real host; the path stays the provider's own.
    upstream_override: str | None = None

    # --- secrets -------------------------------------------------------------------------
    admin_api_key: SecretStr | None = None
    # The key the command-line client (`ainfera-dispatch batch ...`) sends to a gateway.
    api_key: SecretStr | None = None
    # Ed25519 key that signs receipts and audit checkpoints: PEM text, or a file holding it.
    signing_key: SecretStr | None = None
    signing_key_file: str = ".local/signing_key.pem"
    # Earlier keys (PEM files, comma-separated): still published, so their signatures verify.
    retired_signing_key_files: str = ""
    provider_keys: Mapping[str, SecretStr] = Field(default_factory=_provider_keys_from_environ)

    # --- logging -------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # --- tracing: OpenTelemetry's own variables, under their own names ---------------------
    # Off unless OTEL_TRACES_EXPORTER names an exporter (otlp, console) or an OTLP endpoint is set;
    # OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true keep it off. See `traces_exporters`.
    otel_sdk_disabled: str | None = Field(default=None, validation_alias="OTEL_SDK_DISABLED")
    otel_traces_exporter: str | None = Field(default=None, validation_alias="OTEL_TRACES_EXPORTER")
    otel_exporter_otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_exporter_otlp_traces_endpoint: str | None = Field(default=None,
                                                           validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    otel_exporter_otlp_protocol: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_PROTOCOL")
    otel_exporter_otlp_traces_protocol: str | None = Field(default=None,
                                                           validation_alias="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")

    # --- gateway -------------------------------------------------------------------------
    max_request_bytes: int = 4 * 1024 * 1024
    sync_wait_timeout_s: float = 300.0
    # A stream with no message from its worker for this long ends with an error event (its worker
    # died, or the relay lost a message). Above the upstream read timeout, after which the worker
    # itself ends a silent stream.
    stream_idle_timeout_s: float = 75.0
    api_key_cache_ttl_s: float = 30.0
    # A waiter re-checks Postgres this often in case a completion notice was lost.
    waiter_recheck_s: float = 2.0

    # --- upstream calls ------------------------------------------------------------------
    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 60.0
    upstream_deadline_s: float = 120.0
    upstream_max_retries: int = 2
    upstream_retry_after_cap_s: float = 10.0
    upstream_backoff_base_s: float = 0.25
    upstream_max_connections: int = 200
    # Idle keep-alive connections are not reused after this: below the 5 s many servers close them
    # at, so a request is never written into a connection the provider is closing.
    upstream_keepalive_expiry_s: float = Field(default=4.0, gt=0)
    # "lean": our HTTP/1.1 transport under httpx (half the CPU per call); "httpx": httpx's own.
    upstream_transport: Literal["lean", "httpx"] = "lean"
    upstream_max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)  # longer: refused, not buffered

    # --- worker --------------------------------------------------------------------------
    worker_max_jobs: int = 100
    batch_worker_max_jobs: int = 100
    bulk_worker_nice: int = 10  # CPU niceness of worker processes that serve no interactive queue
    # Fallback poll when no wake-up notice arrives (deferred retries, lost notices).
    worker_poll_fallback_s: float = 1.0
    worker_job_completion_wait_s: int = 30
    # A job attempted this many times without finishing (worker deaths, our own outages) fails for good.
    job_max_attempts: int = Field(default=10, ge=1, le=100)
    # A finished job whose commit fails retries it for this long, answer in hand, then holds the
    # commit in Redis for its next attempt. Keep it under the job timeout's margin (30 s).
    commit_retry_s: float = Field(default=20.0, ge=0, le=25)

    # --- router --------------------------------------------------------------------------
    default_max_cost_per_call_usd: float = 0.10
    default_output_ratio: float = 0.5
    # A latency budget may cost at most this many aa_index points against the pick without it.
    latency_quality_cap: float = 10.0
    # Preferred providers win among candidates within this many aa_index points of the best.
    preferred_quality_margin: float = 2.0
    # Latency priors where the catalog has no figure.
    default_ttft_ms: float = 1000.0
    fast_tier_ttft_ms: float = 200.0
    default_output_tokens_per_s: float = 50.0
    # ainfera-auto tries at most this many next-ranked models after an upstream failure.
    max_fallbacks: int = 2
    # Learned statistics: medians over a model's newest `stats_window` receipts, at most
    # `stats_tenant_share` of them from any one tenant, published once the window holds
    # `stats_min_samples` (more than twice the share: no one tenant is half of a window).
    stats_window: int = Field(default=50, ge=1)
    stats_tenant_share: int = Field(default=10, ge=1)
    stats_min_samples: int = Field(default=21, ge=1)
    stats_refresh_s: float = 1.0
    # A worker leases slices of a budget for this long (shared/spend/leases.py), so budgeted calls
    # hold their worst case in memory; 0: every budgeted call holds in Postgres.
    budget_lease_s: float = Field(default=5.0, ge=0, le=60)

    # --- files, batches, async jobs ---------------------------------------------------------
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_tenant_file_bytes: int = Field(default=10 * 1024**3, ge=0)  # a tenant's input files, all together
    max_batch_lines: int = 2_000_000
    max_batch_line_bytes: int = 10 * 1024 * 1024  # one input line (a request, images and all) at most this long
    batch_queue_watermark: int = 4000  # the supervisor keeps the bulk queue at most this deep
    batch_feed_chunk: int = 500  # lines fed per batch per turn (turns go round the tenants)
    max_job_wait_s: float = 60.0  # longest GET /v1/jobs/{id}?wait=
    idempotency_lock_s: float = 330.0  # a first request holding a key longer than this is presumed dead

    # --- fanout (catalog probes) ------------------------------------------------------------
    fanout_interval_s: float = 0.0  # 0: no scheduled runs (manual runs only)
    fanout_spend_cap_usd: float = 0.05  # per run: probes stop once their estimated cost reaches it
    fanout_probe_timeout_s: float = 20.0
    fanout_deactivate_after: int = 2  # consecutive failed runs
    fanout_reactivate_after: int = 1  # consecutive passed runs
    fanout_pass_rate_floor: float = 0.5  # under it, a run deactivates nothing
    probe_worker_max_jobs: int = 32

    # --- metrics (Prometheus) -------------------------------------------------------------
    # GET /metrics is open, as Prometheus expects; set this to require `Authorization: Bearer <it>`.
    metrics_token: SecretStr | None = None
    # Each worker process serves its own metrics here (0: none); two processes on one host need two ports.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # --- simulated provider --------------------------------------------------------------
    # A fixed answer time for every model (benchmarks); unset: each model's catalog profile.
    sim_latency_ms: float | None = None
    sim_stream_interval_ms: float | None = None  # between a simulated stream's events (None: see the simulator)
    # The profile's world time is multiplied by this: 0.01 answers a 195-s reasoning call in 2 s.
    sim_time_scale: float = Field(default=0.01, gt=0, le=1)

    @field_validator("upstream_override")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None

    @field_validator("otel_traces_exporter")
    @classmethod
    def _known_exporters(cls, v: str | None) -> str | None:
        """Refuse at startup an exporter this deployment cannot run, rather than drop spans quietly."""
        unknown = [n.strip() for n in (v or "").split(",") if n.strip() and n.strip().lower() not in
                   (*TRACES_EXPORTERS, "none")]
        if unknown:
            raise ValueError(f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}; traces are exported here with "
                             f"{', '.join(TRACES_EXPORTERS)} or none")
        return v

    @property
    def traces_exporters(self) -> tuple[str, ...]:
        """The span exporters tracing runs with; empty (the default) means tracing is off.

        OTEL_SDK_DISABLED=true (the spec's only true value, any case) wins; then OTEL_TRACES_EXPORTER
        (comma-separated; `none` anywhere means none); without it, an OTLP endpoint means `otlp`.
        The spec's default exporter (`otlp` with nothing set) is not followed: tracing is opt-in here.
        """
        if (self.otel_sdk_disabled or "").strip().lower() == "true":
            return ()
        if self.otel_traces_exporter and self.otel_traces_exporter.strip():
            names = tuple(dict.fromkeys(n.strip().lower() for n in self.otel_traces_exporter.split(",") if n.strip()))
            return () if "none" in names else names
        if self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint:
            return ("otlp",)
        return ()

    @property
    def tracing(self) -> bool:
        return bool(self.traces_exporters)

    @property
    def retired_key_files(self) -> list[str]:
        return [f.strip() for f in self.retired_signing_key_files.split(",") if f.strip()]

    @property
    def session_database_url(self) -> str:
        """Postgres itself, for connections that keep a session (see `database_direct_url`)."""
        return self.database_direct_url or self.database_url

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    def provider_key(self, env_name: str | None) -> str | None:
        """The credential stored under `env_name`, or None."""
        if not env_name:
            return None
        secret = self.provider_keys.get(env_name)
        return secret.get_secret_value() if secret else None
