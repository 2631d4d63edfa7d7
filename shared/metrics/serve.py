"""A worker process's own metrics port: prometheus-client's HTTP server, in a thread, over the
process's registry (`AINFERA_WORKER_METRICS_PORT`, 0 = none). The gateway serves `/metrics` itself."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from shared.logging import get_logger

log = get_logger(__name__)


@contextlib.contextmanager
def metrics_port(registry: CollectorRegistry, host: str, port: int) -> Iterator[int | None]:
    """Serve `registry` on host:port while inside; yields the port (None when off or taken: a worker
    that cannot expose its metrics still works, and says so once)."""
    if port <= 0:
        yield None
        return
    try:
        server: WSGIServer
        thread: threading.Thread
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        log.warning("worker_metrics_port_unavailable", host=host, port=port, error=str(e))
        yield None
        return
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
