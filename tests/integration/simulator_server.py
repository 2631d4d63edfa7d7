"""Start the simulated provider as a real uvicorn server on a free port, for tests that need sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from shared.simulator.server import build_config, create_app, quiet_truncation_logs


@contextmanager
def running_simulator(latency_ms: float | None = 0.0, *, catalog_path: Path | None = None,
                      time_scale: float = 1.0) -> Iterator[str]:
    """Yield the base URL of a simulator serving in a background thread; stop it on exit.

    `latency_ms=None` answers in each model's catalog profile, at `time_scale`.

    The listening socket is bound and listening before the server thread starts, so
    clients can connect at once (the kernel queues them): no waiting for readiness.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    app = create_app(latency_ms=latency_ms, catalog_path=catalog_path, time_scale=time_scale)
    quiet_truncation_logs()
    server = uvicorn.Server(build_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="simulator", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
