"""PgBouncer in transaction pooling mode in front of the test Postgres, for the suite's PgBouncer
leg (`make test-pgbouncer`). It is the distribution's package (`apt-get install pgbouncer`),
started here in the foreground on a free port with a configuration of its own, and stopped
after the session. Every database on the Postgres behind it is reachable by name (`* =`), so
each test's cloned database works through it unchanged."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.harness import free_port

_CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
max_client_conn = 4000
default_pool_size = 20
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
pidfile = {pidfile}
admin_users = {user}
"""


def through(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by PgBouncer's."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@contextlib.contextmanager
def running_pgbouncer(postgres_dsn: str, user: str = "postgres") -> Iterator[int]:
    """Start PgBouncer in front of the Postgres of `postgres_dsn`; yields the port it listens on."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer; `make test-pgbouncer` does)")
    target = urlsplit(postgres_dsn)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ainfera-pgbouncer-"))
    auth_file = workdir / "users.txt"
    auth_file.write_text(f'"{user}" ""\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(_CONFIG.format(host=target.hostname or "127.0.0.1", port=target.port or 5432, listen=port,
                                     auth_file=auth_file, pidfile=workdir / "pgbouncer.pid", user=user))
    for path in (workdir, auth_file, config):
        path.chmod(0o777 if path.is_dir() else 0o644)
    # PgBouncer refuses to run as root; as root, it is told to switch to the database's user.
    command = [binary, *(["-u", user] if os.geteuid() == 0 else []), str(config)]
    log = (workdir / "pgbouncer.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start: {(workdir / 'pgbouncer.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def show(port: int, what: str, user: str = "postgres") -> list[dict[str, str]]:
    """PgBouncer's admin console: `SHOW <what>` as rows (psql, as the console speaks only the simple protocol)."""
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "pgbouncer", "-A", "-F", "\t",
                          "-c", f"SHOW {what}"], capture_output=True, text=True, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("(")]
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:]]
