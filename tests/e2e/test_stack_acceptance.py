"""The product's own acceptance, replayed on its own catalog: on the 54 rows of its original provider set
(five first-party providers, and Groq, Fireworks, DeepInfra, Novita and Together as hosts of open models),
`routing_hint.stack=china` routes to Novita and only Novita, chosen model and every fallback, and
`GET /v1/models?stack=china` lists Novita's rows and nothing else. Gateway, worker and simulated provider
run as processes, started with the console script, against a fresh seeded database cut down to the rows."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.batch_helpers import Stack, running_stack
from tests.fixtures import acceptance_catalog

pytestmark = pytest.mark.e2e

HAMLET = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]


def cut_to_the_acceptance_catalog(stack: Stack) -> None:
    stack.db("DELETE FROM models WHERE NOT (slug = ANY($1::text[]))", list(acceptance_catalog.ROWS))
    stack.db("DELETE FROM providers WHERE NOT (name = ANY($1::text[]))", list(acceptance_catalog.PROVIDERS))


def listed(stack: Stack, auth: dict[str, str], query: str = "") -> list[dict]:
    r = httpx.get(f"{stack.base_url}/v1/models{query}", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    return [m for m in r.json()["data"] if m["id"] != "ainfera-auto"]


def test_stack_china_routes_novita_only_on_the_products_own_catalog(tmp_path):
    with running_stack(tmp_path) as stack:
        cut_to_the_acceptance_catalog(stack)
        _, auth = stack.new_tenant("acceptance")
        deadline = time.monotonic() + 10  # the gateway's catalog cache drops on NOTIFY; bounded wait
        while len(listed(stack, auth)) != 54 and time.monotonic() < deadline:
            time.sleep(0.05)
        everything = listed(stack, auth)
        assert len(everything) == 54
        assert {m["provider"] for m in everything} == set(acceptance_catalog.PROVIDERS)

        china = listed(stack, auth, "?stack=china")
        assert {m["provider"] for m in china} == {"novita"}
        assert {m["id"] for m in china} == {s for s in acceptance_catalog.ROWS if s.endswith("@novita")}
        assert "novita" not in {m["provider"] for m in listed(stack, auth, "?stack=avoid-china")}

        body = {"model": "ainfera-auto", "messages": HAMLET, "routing_hint": {"stack": "china"}}
        plan = httpx.post(f"{stack.base_url}/v1/routing/explain", json=body, headers=auth, timeout=30)
        assert plan.status_code == 200, plan.text
        assert plan.json()["model"].endswith("@novita") and plan.json()["fallbacks"]
        assert all(s.endswith("@novita") for s in plan.json()["fallbacks"])

        for text in ("Summarise the plot of Hamlet in two sentences.", "Name three rivers in Asia.",
                     "Write a haiku about routers."):
            r = httpx.post(f"{stack.base_url}/v1/chat/completions", headers=auth, timeout=60,
                           json={**body, "messages": [{"role": "user", "content": text}],
                                 "routing_hint": {"stack": "china", "explain": True}})
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["model"].endswith("@novita") and out["ainfera"]["provider"] == "novita"
            log = out["ainfera"]["decision_log"]
            stack_step = next(s for s in log["steps"] if s["step"] == "stack")
            assert stack_step["top"] and all(t["slug"].endswith("@novita") for t in stack_step["top"])

        avoid = {**body, "routing_hint": {"stack": "avoid-china"}}
        r = httpx.post(f"{stack.base_url}/v1/chat/completions", json=avoid, headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["ainfera"]["provider"] != "novita"

        receipts = stack.db("SELECT model_slug, provider FROM receipts WHERE status = 'succeeded'")
        china_receipts = [r for r in receipts if r["model_slug"].endswith("@novita")]
        assert len(china_receipts) == 3 and {r["provider"] for r in china_receipts} == {"novita"}
