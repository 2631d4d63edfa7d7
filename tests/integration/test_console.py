"""The operator console's data (`GET /console/data`): admin only, this gateway's metrics as
/metrics shows them, and what the receipts say across workers (spend, errors, decisions)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import ADMIN_KEY, new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def chat(model: str, text: str = "Name a river.") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16}


async def test_the_console_page_holds_no_data_and_its_data_needs_the_admin_key(settings, sim):
    _, key = await new_tenant(settings)
    async with running_gateway(settings) as client:
        page = await client.get("/console")
        script = await client.get("/console/console.js")
        anonymous = await client.get("/console/data")
        tenant = await client.get("/console/data", headers={"Authorization": f"Bearer {key}"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert anonymous.status_code == 401 and tenant.status_code == 401  # a tenant's key is not the admin key


async def test_the_console_shows_the_metrics_and_the_receipts(settings, sim):
    _, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_worker(settings), running_gateway(settings) as client:
        ok = await client.post("/v1/chat/completions", json=chat("llama-3.3-70b@groq"), headers=auth)
        auto = await client.post("/v1/chat/completions", json=chat("ainfera-auto"), headers=auth)
        failed = await client.post("/v1/chat/completions", json=chat("llama-3.3-70b@groq", "Hi [sim:fail=500]"),
                                   headers=auth)
        data = (await client.get("/console/data", headers=ADMIN)).json()
        scraped = (await client.get("/metrics")).text
    assert (ok.status_code, auto.status_code, failed.status_code) == (200, 200, 502), failed.text
    api = sum(s.value for f in text_string_to_metric_families(scraped) for s in f.samples
              if s.name == "ainfera_http_requests_total" and s.labels["route"].startswith("/v1/"))
    assert data["requests"]["total"] == api == 3
    assert data["requests"]["by_status"] == {"200": 2, "502": 1}
    assert data["latency"]["count"] == 3 and data["latency"]["buckets"][-1] == [None, 3]
    assert set(data["queues"]) == {"interactive", "batch", "probe", "control"}
    assert {(e["provider"], e["code"]) for e in data["upstream_errors"]} == {("groq", "upstream_server_error")}
    assert {s["model"] for s in data["spend_today"]} >= {"llama-3.3-70b@groq", auto.json()["model"]}
    newest = data["decisions"][:3]
    assert [d["status"] for d in newest] == ["failed", "succeeded", "succeeded"]
    assert newest[1]["requested"] == "ainfera-auto" and "is first of" in newest[1]["reason"]
    assert newest[2]["reason"] is None  # a pinned slug has no routing decision to explain
