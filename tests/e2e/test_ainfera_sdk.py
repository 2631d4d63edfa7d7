"""The public `ainfera` SDK (1.1.0, unmodified) against this gateway, used as its README shows with
only `base_url` changed: an agent (a named API key), inference through `POST /v1/inference` with
`ainfera-auto` and a pinned slug, the agent's spend policy refusing as the SDK's own exceptions,
the receipt, and the audit chain walked and verified."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ainfera import (
    AinferaClient,
    APIError,
    AsyncAinferaClient,
    InferenceResponse,
    ModelUnavailable,
    SpendPolicyExceeded,
)

from tests.e2e.conftest import ADMIN_KEY

pytestmark = pytest.mark.e2e

PINNED = "gpt-4.1@openai"
HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(scope="module")
def agent_key(system) -> dict[str, Any]:
    """A tenant and one named key of it: the agent."""
    tenant = system.new_tenant("ainfera-sdk")
    r = httpx.post(f"{system.base_url}/v1/admin/tenants/{tenant['tenant_id']}/keys", json={"name": "varda"},
                   headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert r.status_code == 201, r.text
    return {**r.json(), "tenant_id": tenant["tenant_id"]}


@pytest.fixture(scope="module")
def client(system, agent_key) -> AinferaClient:
    return AinferaClient(api_key=agent_key["api_key"], base_url=system.base_url)


def set_policy(system, agent_key, method: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.request(method, f"{system.base_url}/v1/agents/{agent_key['id']}/spend-policy", json=body,
                         headers={"authorization": f"Bearer {agent_key['api_key']}"}, timeout=10)


def test_retrieve_agent(client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    assert agent.agent_id == agent_key["id"]
    assert agent.name == "varda" and agent.tenant_id == agent_key["tenant_id"] and agent.status == "active"


def test_inference_with_ainfera_auto_and_a_pinned_slug(client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    auto = agent.inference(model="ainfera-auto", messages=HELLO, max_tokens=64, task_type="chat",
                           routing_hint={"stack": "eu"})
    assert isinstance(auto, InferenceResponse)
    assert "@" in auto.model_used and auto.content and auto.provider
    assert auto.inference_id.startswith("job_") and auto.receipt_id.startswith("rcpt_")
    assert auto.finish_reason in ("stop", "length") and auto.input_tokens > 0 and auto.output_tokens > 0
    pinned = agent.inference(model=PINNED, messages=HELLO, max_tokens=64)
    assert pinned.model_used == PINNED and pinned.provider == "openai" and pinned.content
    assert pinned.cost_usd > Decimal(0)
    receipt = client.receipts.retrieve(pinned.receipt_id)
    assert receipt.receipt_id == pinned.receipt_id and receipt.inference_id == pinned.inference_id
    assert Decimal(str(receipt.cost_usd)) == pinned.cost_usd


def test_unknown_model_is_model_unavailable(client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    with pytest.raises(ModelUnavailable) as e:
        agent.inference(model="no-such-model@nowhere", messages=HELLO)
    assert e.value.status_code == 422 and e.value.model == "no-such-model@nowhere"


def test_spend_policy_refuses_as_the_sdk_exceptions(system, client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    r = set_policy(system, agent_key, "POST", {"per_call_cap_usd": "0.001", "daily_cap_usd": "20"})
    assert r.status_code == 200, r.text
    assert r.json()["spend_policy"] == {"per_call_cap_usd": "0.001", "daily_cap_usd": "20"}
    assert r.json()["drain_proof_status"] == "protected"
    with pytest.raises(SpendPolicyExceeded) as per_call:
        agent.inference(model=PINNED, messages=HELLO, max_tokens=4000)
    assert per_call.value.body["code"] == "spend_policy_exceeded"
    assert per_call.value.body["reason"] == "per_call_cap_exceeded"
    # Per-call room, but the worst case does not fit the daily cap.
    r = set_policy(system, agent_key, "PATCH", {"per_call_cap_usd": 100, "daily_cap_usd": 0.01})
    assert r.status_code == 200, r.text
    with pytest.raises(SpendPolicyExceeded) as daily:
        agent.inference(model=PINNED, messages=HELLO, max_tokens=4000)
    assert daily.value.body["reason"] == "daily_cap_exceeded"
    # Out of Ainfera's ranges: a 400 naming the field.
    bad = set_policy(system, agent_key, "PATCH", {"daily_cap_usd": 20000})
    assert bad.status_code == 400 and bad.json()["param"] == "daily_cap_usd"
    assert set_policy(system, agent_key, "POST", {}).status_code == 200  # cleared again
    # Both refusals are on the chain, with the cap that refused.
    rejected = [e for e in agent.audit_chain.events() if e.event_type == "inference.rejected"]
    assert [e.payload["reason"] for e in rejected[-2:]] == ["per_call_cap_exceeded", "daily_cap_exceeded"]


def test_walk_and_verify_the_chain(client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    events = list(agent.audit_chain.events())
    assert events and [e.seq for e in events] == list(range(1, len(events) + 1))
    assert any(e.event_type == "inference.routed" for e in events)
    assert agent.audit_chain.verify() is True
    assert agent.audit_chain.verify_remote().valid is True


def test_unsupported_calls_are_501_naming_the_feature(client, agent_key):
    agent = client.agents.retrieve(agent_key["id"])
    for call, feature in ((lambda: agent.wallet, "Wallets"), (agent.get_card, "Agent cards"),
                          (lambda: client.agents.signup(agent_handle="x"), "Agent signup"),
                          (agent.audit_chain.annex_iv_bundle, "Annex IV")):
        with pytest.raises(APIError) as e:
            call()
        assert e.value.status_code == 501 and feature in str(e.value)


def test_the_async_client_runs_the_same_calls(system, agent_key):
    async def run() -> None:
        async with AsyncAinferaClient(api_key=agent_key["api_key"], base_url=system.base_url) as aclient:
            agent = await aclient.agents.retrieve(agent_key["id"])
            answer = await agent.inference(model=PINNED, messages=HELLO, max_tokens=32)
            assert answer.model_used == PINNED and answer.content
            receipt = await aclient.receipts.retrieve(answer.receipt_id)
            assert receipt.inference_id == answer.inference_id
            assert await agent.audit_chain.verify() is True

    asyncio.run(run())
