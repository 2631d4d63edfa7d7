"""`ainfera-dispatch up` (what `make up` runs): from an empty database to an answered request, then Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from redis import Redis

from tests.e2e.conftest import base_env
from tests.harness import REDIS_BASE, drop_database, dsn_for, free_port

pytestmark = pytest.mark.e2e
REDIS_DB = 13


def test_up_brings_everything_up_and_ctrl_c_stops_it(tmp_path):
    dbname = f"ainfera_up_{uuid.uuid4().hex[:10]}"
    gw_port, sim_port = free_port(), free_port()
    env = base_env(dsn_for(dbname), REDIS_DB)
    env.update({"AINFERA_GATEWAY_PORT": str(gw_port), "AINFERA_SIM_PORT": str(sim_port)})
    # a fresh machine has no signing key: `up` makes one where the settings say
    env.pop("AINFERA_SIGNING_KEY")
    key_file = tmp_path / "keys" / "signing_key.pem"
    env["AINFERA_SIGNING_KEY_FILE"] = str(key_file)
    Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli.main", "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    key_found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "demo API key" in line:
                key_found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert key_found.wait(90), "".join(lines[-40:])
        key = re.search(r"(sk-ainf-\S+)", "".join(lines)).group(1)
        r = httpx.post(f"http://127.0.0.1:{gw_port}/v1/chat/completions", timeout=30,
                       headers={"Authorization": f"Bearer {key}"},
                       json={"model": "ainfera-auto", "messages": [{"role": "user", "content": "Hello"}]})
        assert r.status_code == 200, r.text
        assert r.json()["model"].count("@") == 1

        # A second terminal with nothing set but where the database and Redis are: the run is
        # planned by the probe worker `up` started, which can reach every provider (the simulator).
        second_terminal = {"PATH": os.environ["PATH"], "AINFERA_DATABASE_URL": dsn_for(dbname),
                           "AINFERA_REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}"}
        fanout = subprocess.run([sys.executable, "-m", "shared.cli.main", "fanout", "run", "--wait"],
                                env=second_terminal, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                check=False)
        assert fanout.returncode == 0, fanout.stderr + fanout.stdout
        assert "passed 130, failed 0, skipped 0" in fanout.stdout, fanout.stdout
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        asyncio.run(drop_database(dbname))
        Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()
    assert code == 0, "".join(lines[-40:])
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{gw_port}/healthz", timeout=2)
