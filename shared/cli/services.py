"""`ainfera-dispatch services`: make sure Postgres and Redis answer at the configured URLs.

When a URL points at this machine and nothing answers, start the local server, and
install it with apt-get first when it is missing (and we may). Remote URLs are only
checked. `make up` and `make test` run this before anything else.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reachable(host, port):
            return True
        time.sleep(0.25)
    return False


def _sh(*cmd: str) -> bool:
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode == 0  # noqa: S603 (fixed argument lists)


def _apt_install(package: str) -> bool:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"cannot install {package}: apt-get needs root on a Debian-like system", file=sys.stderr)
        return False
    env_ok = _sh("apt-get", "update", "-qq")
    return env_ok and _sh("apt-get", "install", "-y", "-qq", package)


def _start_postgres() -> None:
    if not glob.glob("/etc/postgresql/*/main") and not _apt_install("postgresql"):
        return
    for conf in sorted(glob.glob("/etc/postgresql/*/main")):
        version = conf.split("/")[3]
        if shutil.which("pg_ctlcluster"):
            _sh("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")
            return


def _start_redis(port: int) -> None:
    if shutil.which("redis-server") is None and not _apt_install("redis-server"):
        return
    _sh("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
        "--save", "", "--appendonly", "no")


def ensure_services(database_url: str, redis_url: str) -> int:
    problems = 0
    pg = urlsplit(database_url)
    pg_host, pg_port = pg.hostname or "127.0.0.1", pg.port or 5432
    if not _reachable(pg_host, pg_port):
        if pg_host in _LOCAL_HOSTS:
            _start_postgres()
        if not _wait(pg_host, pg_port, 30):
            print(f"Postgres does not answer at {pg_host}:{pg_port}", file=sys.stderr)
            problems += 1
    rd = urlsplit(redis_url)
    rd_host, rd_port = rd.hostname or "127.0.0.1", rd.port or 6379
    if not _reachable(rd_host, rd_port):
        if rd_host in _LOCAL_HOSTS:
            _start_redis(rd_port)
        if not _wait(rd_host, rd_port, 15):
            print(f"Redis does not answer at {rd_host}:{rd_port}", file=sys.stderr)
            problems += 1
    if not problems:
        print(f"postgres {pg_host}:{pg_port} and redis {rd_host}:{rd_port} are reachable", file=sys.stderr)
    return problems


# The distribution's packages the test suite drives, and the program each installs.
TOOLS = {"pgbouncer": "pgbouncer", "chromium": "chromium", "chromium-driver": "chromedriver"}


def ensure_tool(package: str) -> bool:
    """The program of `package` (see TOOLS) is on this machine, installed from the distribution's
    package when it is not."""
    program = TOOLS[package]
    if shutil.which(program) or os.path.exists(f"/usr/sbin/{program}"):
        return True
    return _apt_install(package)
