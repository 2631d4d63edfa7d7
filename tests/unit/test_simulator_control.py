"""The simulator's control API answers loopback clients only; provider routes and /healthz answer anyone
(the gateway and workers reach the simulator over a network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from shared.simulator.server import SimulatorApp, create_app

GROQ = "/api.groq.com/openai/v1/chat/completions"
CHAT = {"model": "llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "hi"}]}
COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


@pytest.fixture
def app() -> SimulatorApp:
    return create_app(latency_ms=0)


def client_from(app: SimulatorApp, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://sim")


@pytest.fixture
async def remote(app: SimulatorApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_from(app, "10.0.3.7") as client:
        yield client


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/_sim/faults"), ("POST", "/_sim/faults"), ("DELETE", "/_sim/faults"),
    ("GET", "/_sim/stats"), ("DELETE", "/_sim/stats"), ("GET", "/_sim/anything"),
])
async def test_the_control_api_refuses_a_client_that_is_not_on_loopback(
    app: SimulatorApp, remote: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await remote.request(method, path, json={"fault": "fail=500"})
    assert r.status_code == 403
    assert "loopback" in r.json()["error"]
    assert app.faults.rules == []


async def test_a_remote_client_still_reaches_providers_and_health(app: SimulatorApp, remote: httpx.AsyncClient) -> None:
    assert (await remote.get("/healthz")).status_code == 200
    r = await remote.post(GROQ, json=CHAT, headers={"Authorization": "Bearer sim-key"})
    assert r.status_code == 200
    assert app.stats.total == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
async def test_loopback_clients_use_the_control_api(app: SimulatorApp, host: str) -> None:
    async with client_from(app, host) as local:
        r = await local.post("/_sim/faults", json={"fault": "fail=500"})
        assert r.status_code == 201
        assert (await local.get("/_sim/stats")).status_code == 200


@pytest.mark.parametrize("host", ["testclient", "", "localhost.evil.example", "::ffff:10.0.0.1", "0.0.0.0"])
async def test_a_client_address_that_is_not_a_loopback_ip_is_refused(app: SimulatorApp, host: str) -> None:
    async with client_from(app, host) as client:
        assert (await client.get("/_sim/stats")).status_code == 403


def test_compose_does_not_publish_the_simulators_port() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["sim-provider"]
    assert "ports" not in service
