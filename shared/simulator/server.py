"""Running the simulated provider as a process: uvicorn with uvloop and httptools, no access log."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from shared.settings import Settings
from shared.simulator.app import SimulatorApp, create_app
from shared.simulator.profiles import LatencyPriors

__all__ = ["SimulatorApp", "create_app", "latency_priors", "quiet_truncation_logs", "run"]

# What uvicorn logs when `[sim:truncated]` closes a response early on purpose.
_TRUNCATION_LOG = "ASGI callable returned without completing response."


class _DropDeliberateTruncation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _TRUNCATION_LOG


def quiet_truncation_logs() -> None:
    """Silence uvicorn's error line for responses the simulator cuts short deliberately."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropDeliberateTruncation) for f in logger.filters):
        logger.addFilter(_DropDeliberateTruncation())


def build_config(app: SimulatorApp, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration the simulator runs with, shared by `run` and test helpers."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # The client address is the socket's peer, never a forwarded header: the control API trusts it.
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
        backlog=4096,
    )


def latency_priors(settings: Settings) -> LatencyPriors:
    """The router's priors, so a model the catalog has no figure for answers as the router expects."""
    return LatencyPriors(default_ttft_ms=settings.default_ttft_ms, fast_tier_ttft_ms=settings.fast_tier_ttft_ms,
                         output_tokens_per_s=settings.default_output_tokens_per_s)


def run(settings: Settings, *, catalog_path: Path | None = None) -> None:
    """Serve every catalog provider on settings.sim_host:settings.sim_port until interrupted."""
    app = create_app(latency_ms=settings.sim_latency_ms, catalog_path=catalog_path,
                     time_scale=settings.sim_time_scale, priors=latency_priors(settings),
                     stream_interval_ms=settings.sim_stream_interval_ms)
    quiet_truncation_logs()
    uvicorn.Server(build_config(app, host=settings.sim_host, port=settings.sim_port)).run()
