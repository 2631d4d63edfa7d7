"""The official `openai` SDK against the gateway, worker and simulated provider running as processes."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(system) -> openai.OpenAI:
    tenant = system.new_tenant("sdk")
    return system.openai_client(tenant["api_key"])


def test_sdk_chat_completion_with_a_pinned_slug(client):
    resp = client.chat.completions.create(
        model="deepseek-v4-flash@deepinfra",
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Name three colours."}],
        max_tokens=64,
    )
    assert resp.model == "deepseek-v4-flash@deepinfra"
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.completion_tokens > 0


def test_sdk_chat_completion_with_ainfera_auto(client):
    raw = client.chat.completions.with_raw_response.create(
        model="ainfera-auto", messages=[{"role": "user", "content": "Hello!"}]
    )
    resp = raw.parse()
    assert "@" in resp.model  # a canonical slug, never the alias
    assert raw.headers["x-ainfera-receipt-id"].startswith("rcpt_")
    assert raw.headers["x-ainfera-job-id"].startswith("job_")
    assert float(raw.headers["x-ainfera-cost-usd"]) >= 0


def test_sdk_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert "ainfera-auto" in ids
    assert "claude-haiku-4.5@anthropic" in ids
    assert len(ids) > 100


def test_sdk_sees_openai_errors(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model@nowhere", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="ainfera-auto", messages=[], )


def test_sdk_rejects_a_wrong_key(system):
    bad = system.openai_client("sk-ainf-nope")
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_cli_issues_another_key_that_works(system):
    tenant = system.new_tenant("cli")
    out = system.cli("key", "create", "--tenant", tenant["tenant_id"])
    assert out.returncode == 0, out.stderr
    import json

    key = json.loads(out.stdout)["api_key"]
    assert key != tenant["api_key"]
    c = system.openai_client(key)
    assert c.models.retrieve("ainfera-auto").id == "ainfera-auto"
