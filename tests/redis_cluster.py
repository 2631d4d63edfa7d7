"""A real Redis Cluster for tests: three masters started here with `redis-server --cluster-enabled
yes` on free ports, joined by `redis-cli --cluster create`, and stopped after. No Docker; the
same `redis-server` and `redis-cli` the machine already has."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
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
def running_redis_cluster(masters: int = 3, replicas: int = 0) -> Iterator[list[int]]:
    """Start a cluster of `masters` masters, each with `replicas` replicas; yields every node's port.

    A node is thought failed after 2 s without an answer (`cluster-node-timeout`), so that a
    test can see a replica take over within seconds."""
    workdir = Path(tempfile.mkdtemp(prefix="ainfera-redis-cluster-"))
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(masters * (1 + replicas)):
            port = _free_port()
            node = workdir / str(port)
            node.mkdir()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
                 "--appendonly", "no", "--cluster-node-timeout", "2000",
                 "--repl-diskless-sync-delay", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        for port in ports:
            _wait_ping(port)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       capture_output=True, check=True, timeout=60)
        deadline = time.monotonic() + 30
        while not (all("cluster_state:ok" in _cli(port, "cluster", "info") for port in ports)
                   and _replicas_in_sync(ports) == masters * replicas):
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


def primary_and_replica(ports: list[int], slot: int) -> tuple[int, int | None]:
    """The ports of the master that holds `slot` and of one of its live replicas (None if none),
    as the first live node in `ports` sees them."""
    asked = next(p for p in ports if _answers(p))
    nodes = [line.split() for line in _cli(asked, "cluster", "nodes").splitlines() if line.strip()]
    by_id = {n[0]: int(n[1].split("@")[0].rsplit(":", 1)[1]) for n in nodes}
    for n in nodes:
        if "master" in n[2] and "fail" not in n[2] and any(_covers(r, slot) for r in n[8:]):
            replica = next((m for m in nodes if m[3] == n[0] and "fail" not in m[2]), None)
            return by_id[n[0]], None if replica is None else by_id[replica[0]]
    raise LookupError(f"no master holds slot {slot}")


def _answers(port: int) -> bool:
    try:
        return _cli(port, "ping").strip() == "PONG"
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False


def _covers(slot_range: str, slot: int) -> bool:
    if slot_range.startswith("["):
        return False  # a slot being migrated
    low, _, high = slot_range.partition("-")
    return int(low) <= slot <= int(high or low)


def fail_over(replica_port: int) -> None:
    """A manual failover (CLUSTER FAILOVER on the replica): it becomes the slot's master."""
    _cli(replica_port, "cluster", "failover")


def _replicas_in_sync(ports: list[int]) -> int:
    """How many nodes are replicas that every node knows as such and whose link to their master is up."""
    seen = [sum("slave" in line.split()[2].split(",") for line in _cli(port, "cluster", "nodes").splitlines()
                if line.strip()) for port in ports]
    linked = sum("master_link_status:up" in _cli(port, "info", "replication") for port in ports)
    return min([*seen, linked])


def kill_node(port: int) -> None:
    """SIGKILL the node on `port`: a crash, with nothing handed over (its replica takes over after
    cluster-node-timeout)."""
    pid = int(next(line.split(":", 1)[1] for line in _cli(port, "info", "server").splitlines()
                   if line.startswith("process_id:")))
    os.kill(pid, signal.SIGKILL)


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if _cli(port, "ping").strip() == "PONG":
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on {port} did not start")
        time.sleep(0.05)
