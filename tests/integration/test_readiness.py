"""`/readyz` reports each dependency's state, with Postgres, Redis or the catalog really gone:
the gateway reaches Postgres and Redis through TCP proxies the tests cut."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from shared.settings import Settings
from tests.harness import fetch_rows, running_gateway
from tests.integration.flaky_tcp import flaky_proxy

pytestmark = pytest.mark.integration

DEPENDENCIES = {"postgres", "redis", "catalog", "signing_key"}


def _through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 0


async def ready_within(client, status: int, timeout_s: float = 15) -> dict:
    """The /readyz body once it answers `status` (a reconnect after a restore takes a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        r = await client.get("/readyz")
        if r.status_code == status:
            return r.json()
        assert loop.time() < deadline, r.json()
        await asyncio.sleep(0.1)


async def test_all_dependencies_up(settings: Settings):
    async with running_gateway(settings) as client:
        r = await client.get("/readyz")
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    # The earlier summary, unchanged for whatever reads it.
    assert body["checks"] == {"postgres": "ok", "redis": "ok", "catalog": "130 models", "signing_key": "ok"}
    deps = body["dependencies"]
    assert set(deps) == DEPENDENCIES and all(d["state"] == "up" for d in deps.values())
    assert deps["catalog"]["models"] == 130 and 0 < deps["catalog"]["active_models"] <= 130
    assert deps["signing_key"]["kid"] == jwks["keys"][0]["kid"]
    assert all(d["latency_ms"] >= 0 for d in deps.values())


@pytest.mark.parametrize(("dependency", "setting"), [("redis", "redis_url"), ("postgres", "database_url")])
async def test_a_dependency_down_is_503_naming_it_and_recovers(settings: Settings, dependency: str, setting: str):
    url = getattr(settings, setting)
    async with flaky_proxy(*_target(url)) as proxy:
        via = settings.model_copy(update={setting: _through(url, proxy.port)})
        async with running_gateway(via) as client:
            await ready_within(client, 200)
            proxy.cut()
            r = await client.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "not_ready"
            assert body["dependencies"][dependency]["state"] == "down" and body["dependencies"][dependency]["error"]
            assert body["checks"][dependency].startswith("unavailable (")
            assert {n for n, d in body["dependencies"].items() if d["state"] == "up"} == DEPENDENCIES - {dependency}
            proxy.restore()
            assert (await ready_within(client, 200))["dependencies"][dependency]["state"] == "up"


async def test_an_empty_catalog_is_not_ready(settings: Settings):
    async with running_gateway(settings) as client:
        await ready_within(client, 200)
        await fetch_rows(settings, "DELETE FROM models")  # the catalog's NOTIFY reloads the gateway's copy
        body = await ready_within(client, 503)
    assert body["dependencies"]["catalog"]["state"] == "down"
    assert body["checks"]["catalog"] == "0 models"  # as the earlier summary said it
    assert body["dependencies"]["postgres"]["state"] == "up" and body["dependencies"]["redis"]["state"] == "up"
