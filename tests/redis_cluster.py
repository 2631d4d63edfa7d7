"""A real Redis Cluster for tests: three masters started here with `redis-server --cluster-enabled
yes` on free ports, joined by `redis-cli --cluster create`, and stopped after. No Docker; the
same `redis-server` and `redis-cli` the machine already has."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    """A port that is free with its cluster bus port (+10000), which must stay under 65536."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 50000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


@contextlib.contextmanager
def running_redis_cluster(masters: int = 3) -> Iterator[list[int]]:
    """Start a cluster of `masters` masters (no replicas); yields their ports."""
    workdir = Path(tempfile.mkdtemp(prefix="ainfera-redis-cluster-"))
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(masters):
            port = _free_port()
            node = workdir / str(port)
            node.mkdir()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        for port in ports:
            _wait_ping(port)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, check=True, timeout=60)
        deadline = time.monotonic() + 30
        while "cluster_state:ok" not in _cli(ports[0], "cluster", "info"):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready")
            time.sleep(0.1)
        yield ports
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if _cli(port, "ping").strip() == "PONG":
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on {port} did not start")
        time.sleep(0.05)
