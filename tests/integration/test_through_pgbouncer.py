"""The PgBouncer leg's own check (`make test-pgbouncer`): the gateway's and the workers' pools
really go through PgBouncer in transaction mode, while what needs a session (LISTEN for cache
invalidation) goes straight to Postgres."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from shared.settings import Settings
from tests.harness import new_tenant, running_gateway, running_worker
from tests.integration.conftest import PGBOUNCER
from tests.pgbouncer import show

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not PGBOUNCER, reason="the PgBouncer leg only (make test-pgbouncer)")]


async def test_calls_go_through_pgbouncer_in_transaction_mode(settings: Settings, sim, pgbouncer_port):
    assert settings.database_pooler == "pgbouncer"
    assert urlsplit(settings.database_url).port == pgbouncer_port != urlsplit(settings.session_database_url).port
    dbname = urlsplit(settings.database_url).path.lstrip("/")
    _, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        for _ in range(5):
            r = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                  json={"model": "llama-3.3-70b@groq", "max_tokens": 8,
                                        "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
        pools = [p for p in show(pgbouncer_port, "POOLS") if p["database"] == dbname]
        clients = [c for c in show(pgbouncer_port, "CLIENTS") if c["database"] == dbname]
    assert pools and all(p["pool_mode"] == "transaction" for p in pools)
    assert len(clients) >= 2  # the gateway's and the worker's pools hold client connections to PgBouncer
