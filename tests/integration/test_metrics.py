"""Prometheus metrics after a known mix of calls, through the real gateway, worker, Redis, Postgres
and the simulated provider: the gateway's /metrics and the worker's own port are scraped and parsed
with prometheus-client's parser, and every counter must match the mix exactly."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import Settings
from tests.harness import ADMIN_KEY, free_port, make_settings, new_tenant, running_gateway, running_worker
from tests.harness import fetch_rows as rows
from tests.integration.conftest import REDIS_DB

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PINNED = "gpt-oss-20b@groq"


def chat(model: str = PINNED, text: str = "Name three rivers.", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


class Scrape:
    """One scrape, parsed: sample values by (sample name, labels)."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def matching(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample of `name` whose labels include `labels`."""
        want = set(labels.items())
        return {lab: v for (n, lab), v in self.samples.items() if n == name and want <= lab}

    def total(self, name: str, **labels: str) -> float:
        return sum(self.matching(name, **labels).values())


async def scrape(client: httpx.AsyncClient, url: str = "/metrics", **kw) -> Scrape:
    r = await client.get(url, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Scrape(r.text)


@pytest.fixture
def metrics_settings(database_url: str, redis_flushed, sim_url: str) -> Settings:
    return make_settings(database_url, REDIS_DB, upstream_override=sim_url, worker_metrics_port=free_port())


async def _wait_for_batch(client, auth, batch_id: str) -> dict:
    for _ in range(300):
        b = (await client.get(f"/v1/batches/{batch_id}", headers=auth)).json()
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return b
        await asyncio.sleep(0.1)
    raise AssertionError(b)


async def test_counters_match_a_known_mix_of_calls(metrics_settings: Settings, sim):
    settings = metrics_settings
    tenant_id, key = await new_tenant(settings, "metrics")
    capped_id, capped_key = await new_tenant(settings, "capped")
    auth, capped = {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {capped_key}"}
    async with running_worker(settings) as workers, running_gateway(settings) as client:
        assert workers.metrics_port == settings.worker_metrics_port
        r = await client.put(f"/v1/admin/tenants/{capped_id}/spend_policy", headers=ADMIN,
                             json={"max_cost_per_call_usd": 0.0000001})
        assert r.status_code == 200, r.text

        # 1. a success; 2. an upstream 500 (retried, then the caller's 502); 3. a fallback;
        # 4. a budget refusal; 5. a stream; 6. a batch of three lines.
        ok = await client.post("/v1/chat/completions", headers=auth, json=chat())
        assert ok.status_code == 200, ok.text
        failed = await client.post("/v1/chat/completions", headers=auth, json=chat(text="[sim:fail=500] hi"))
        assert failed.status_code == 502, failed.text
        body = chat("ainfera-auto", routing_hint={"stack": "china"})
        plan = (await client.post("/v1/routing/explain", headers=auth, json=body)).json()
        first, second = plan["model"], plan["fallbacks"][0]
        first_name = (await rows(settings, "SELECT coalesce(provider_model_name, slug) AS name, provider FROM models "
                                           "WHERE slug = $1", first))[0]
        await sim.post("/_sim/faults", json={"model": first_name["name"], "fault": "fail=503"})
        fell_back = await client.post("/v1/chat/completions", headers=auth, json=body)
        assert fell_back.status_code == 200 and fell_back.json()["model"] == second, fell_back.text
        await sim.delete("/_sim/faults")
        refused = await client.post("/v1/chat/completions", headers=capped, json=chat(max_tokens=1000))
        assert refused.status_code == 402, refused.text
        async with client.stream("POST", "/v1/chat/completions", headers=auth, json=chat(stream=True)) as s:
            assert s.status_code == 200
            assert b"[DONE]" in b"".join([chunk async for chunk in s.aiter_bytes()])
        lines = b"".join(
            b'{"custom_id": "l%d", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "%s", '
            b'"messages": [{"role": "user", "content": "line %d"}]}}\n' % (i, PINNED.encode(), i) for i in range(3))
        f = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                              files={"file": ("in.jsonl", lines, "application/jsonl")})
        assert f.status_code == 200, f.text
        created = await client.post("/v1/batches", headers=auth, json={
            "input_file_id": f.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
        assert created.status_code == 200, created.text
        done = await _wait_for_batch(client, auth, created.json()["id"])
        assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}

        g = await scrape(client)
        async with httpx.AsyncClient() as plain:
            w = await scrape(plain, f"http://127.0.0.1:{workers.metrics_port}/metrics")

    groq = PINNED.rsplit("@", 1)[1]
    second_provider = second.rsplit("@", 1)[1]
    chat_route = {"method": "POST", "route": "/v1/chat/completions", "tenant_class": "tenant"}

    # --- gateway: requests by route template, status and tenant class ---------------------------
    assert g.get("ainfera_http_requests_total", **chat_route, status="200") == 3  # ok, fallback, stream
    assert g.get("ainfera_http_requests_total", **chat_route, status="502") == 1
    assert g.get("ainfera_http_requests_total", **chat_route, status="402") == 1
    assert g.get("ainfera_http_requests_total", method="PUT", route="/v1/admin/tenants/{tenant_id}/spend_policy",
                 status="200", tenant_class="admin") == 1
    assert g.get("ainfera_http_requests_total", method="GET", route="/v1/batches/{batch_id}", status="200",
                 tenant_class="tenant") >= 1
    assert g.get("ainfera_http_request_duration_seconds_count", method="POST", route="/v1/chat/completions") == 5
    assert g.get("ainfera_sync_end_to_end_seconds_count") == 4
    assert g.get("ainfera_stream_first_token_seconds_count") == 1
    # No id, key or raw path ever becomes a label.
    labels = {v for (_, lab) in {**g.samples, **w.samples} for _, v in lab}
    for secret in (tenant_id, capped_id, key, capped_key, created.json()["id"], f.json()["id"]):
        assert not any(secret in v for v in labels), secret

    # --- queue: the gateway reads shared state at scrape time; the worker reports its own slots ---
    assert g.get("ainfera_queue_depth", queue="interactive") == 0
    assert g.get("ainfera_batch_lines", state="completed") == 3
    assert g.get("ainfera_batch_lines", state="pending") == g.get("ainfera_batch_lines", state="running") == 0
    assert w.get("ainfera_worker_slots", queue="interactive", state="total") == settings.worker_max_jobs
    assert w.get("ainfera_queue_jobs_total", queue="interactive", outcome="complete") == 5
    assert w.get("ainfera_queue_jobs_total", queue="batch", outcome="complete") == 3
    assert w.get("ainfera_queue_job_retries_total", queue="interactive") == 0
    assert w.get("ainfera_queue_wait_seconds_count", queue="interactive", kind="sync") == 4
    assert w.get("ainfera_queue_wait_seconds_count", queue="interactive", kind="stream") == 1
    assert w.get("ainfera_queue_wait_seconds_count", queue="batch", kind="batch") == 3
    assert w.get("ainfera_dispatch_jobs_total", kind="sync", status="succeeded", code="") == 2
    assert w.get("ainfera_dispatch_jobs_total", kind="sync", status="failed", code="upstream_server_error") == 1
    assert w.get("ainfera_dispatch_jobs_total", kind="sync", status="failed", code="budget_exceeded") == 1
    assert w.get("ainfera_dispatch_jobs_total", kind="stream", status="succeeded", code="") == 1
    assert w.get("ainfera_dispatch_jobs_total", kind="batch", status="succeeded", code="") == 3

    # --- upstream -------------------------------------------------------------------------------
    assert w.get("ainfera_upstream_calls_total", provider=groq, model=PINNED, result="ok") == 5  # ok, stream, 3 lines
    assert w.get("ainfera_upstream_calls_total", provider=groq, model=PINNED, result="error") == 1
    assert w.get("ainfera_upstream_errors_total", provider=groq, model=PINNED, code="upstream_server_error") == 1
    assert w.get("ainfera_upstream_errors_total", provider=first_name["provider"], model=first,
                 code="upstream_server_error") == 1
    assert w.get("ainfera_upstream_calls_total", provider=second_provider, model=second, result="ok") == 1
    assert w.get("ainfera_upstream_latency_seconds_count", provider=groq, model=PINNED) == 5
    retries = settings.upstream_max_retries
    assert w.get("ainfera_upstream_retries_total", provider=groq) == retries
    assert w.get("ainfera_upstream_retries_total", provider=first_name["provider"]) == retries
    assert w.total("ainfera_fallbacks_total") == 1
    assert w.get("ainfera_fallbacks_total", provider=first_name["provider"], model=first) == 1
    assert w.total("ainfera_upstream_calls_total") == 8

    # --- money and trust: what the receipts and the audit chain hold --------------------------------
    receipts = await rows(settings, "SELECT provider, model_slug, cost_usd, input_tokens, output_tokens FROM receipts")
    assert len(receipts) == 8  # ok, 502, fallback, 402, stream, three lines
    spend: dict[tuple[str, str], Decimal] = {}
    tokens: Tally[tuple[str, str, str]] = Tally()
    for rec in receipts:
        if rec["provider"] and rec["model_slug"]:
            k = (rec["provider"], rec["model_slug"])
            spend[k] = spend.get(k, Decimal(0)) + rec["cost_usd"]
            tokens[(*k, "input")] += rec["input_tokens"]
            tokens[(*k, "output")] += rec["output_tokens"]
    for (provider, model), usd in spend.items():
        if usd:
            assert w.get("ainfera_spend_usd_total", provider=provider, model=model) == pytest.approx(float(usd))
    assert w.total("ainfera_spend_usd_total") == pytest.approx(float(sum(spend.values())))
    for (provider, model, direction), n in tokens.items():
        assert w.get("ainfera_tokens_total", provider=provider, model=model, direction=direction) == n
    events = Tally(r["event_type"] for r in await rows(settings, "SELECT event_type FROM audit_events"))
    for event_type, n in events.items():
        assert w.get("ainfera_audit_appends_total", event_type=event_type) == n
    assert w.total("ainfera_audit_appends_total") == sum(events.values()) == 8
    assert w.get("ainfera_audit_last_append_timestamp_seconds") > 0
    assert w.get("ainfera_budget_refusals_total", kind="sync") == 1
    assert w.total("ainfera_rate_limit_hits_total") == g.total("ainfera_rate_limit_hits_total") == 0
    assert w.total("ainfera_reconciler_requeued_total") == 0


async def test_a_rate_limit_hit_is_counted_by_scope_and_unit(settings: Settings, sim):
    tenant_id, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_worker(settings), running_gateway(settings) as client:
        r = await client.put(f"/v1/admin/tenants/{tenant_id}/spend_policy", headers=ADMIN,
                             json={"rate_limits": {"requests_per_minute": 1}})
        assert r.status_code == 200, r.text
        statuses = [(await client.post("/v1/chat/completions", headers=auth, json=chat())).status_code
                    for _ in range(3)]
        g = await scrape(client)
    assert statuses == [200, 429, 429]
    assert g.get("ainfera_rate_limit_hits_total", lane="interactive", scope="tenant", unit="requests") == 2
    assert g.get("ainfera_http_requests_total", method="POST", route="/v1/chat/completions", status="429",
                 tenant_class="tenant") == 2


async def test_metrics_token_guards_the_endpoint_when_set(database_url: str, redis_flushed, sim_url: str):
    settings = make_settings(database_url, REDIS_DB, upstream_override=sim_url, metrics_token="scrape-secret-123")
    async with running_gateway(settings) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        g = await scrape(client, headers={"Authorization": "Bearer scrape-secret-123"})
        # An unknown path is counted under one label, never its own.
        await client.get("/no/such/path/abc123")
        g = await scrape(client, headers={"Authorization": "Bearer scrape-secret-123"})
    assert g.get("ainfera_http_requests_total", method="GET", route="unmatched", status="404",
                 tenant_class="anonymous") == 1
    assert g.get("ainfera_http_requests_total", method="GET", route="/metrics", status="401",
                 tenant_class="anonymous") == 2
    assert not any("abc123" in v for (_, lab) in g.samples for _, v in lab)


async def test_scrape_reads_queue_depth_and_age_the_reconciler_and_the_last_fanout_run(settings: Settings, sim):
    from redis.asyncio import Redis

    from shared.batches.supervisor import SupervisorConfig, supervise
    from shared.queue.names import QueueName, arq_id
    from shared.resources import open_resources

    _, key = await new_tenant(settings)
    auth = {"Authorization": f"Bearer {key}", "Prefer": "respond-async"}
    async with running_gateway(settings) as client:  # no worker: the job waits in its queue
        r = await client.post("/v1/chat/completions", headers=auth, json=chat())
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        g = await scrape(client)
        assert g.get("ainfera_queue_depth", queue="batch") == 1
        assert g.get("ainfera_queue_depth", queue="interactive") == 0
        assert g.get("ainfera_queue_oldest_age_seconds", queue="batch") >= 0
        assert g.get("ainfera_queue_oldest_age_seconds", queue="interactive") == 0
        assert g.matching("ainfera_fanout_last_run_probes") == {}  # no run yet

        # Redis loses the queue entry; the reconciler queues the stored job again and counts it.
        redis = Redis.from_url(settings.redis_url)
        try:
            await redis.zrem(str(QueueName.BATCH), arq_id(QueueName.BATCH, job_id))
            await redis.delete(f"arq:job:{arq_id(QueueName.BATCH, job_id)}")
        finally:
            await redis.aclose()
        assert (await scrape(client)).get("ainfera_queue_depth", queue="batch") == 0
        async with open_resources(settings) as res:
            report = await supervise(res, SupervisorConfig())
            assert report.requeued == 1
            assert res.metrics.registry.get_sample_value("ainfera_reconciler_requeued_total") == 1
        await rows(settings, "INSERT INTO fanout_runs (id, trigger, status, planned, plan, recorded, passed, failed, "
                             "skipped, finished_at) VALUES ('fanout_old', 'manual', 'completed', 2, '{}', 2, 2, 0, 0, "
                             "now() - interval '1 day'), ('fanout_new', 'manual', 'completed', 6, '{}', 6, 3, 2, 1, "
                             "now()), ('fanout_running', 'manual', 'running', 4, '{}', 0, 0, 0, 0, NULL)")
        await rows(settings, "UPDATE fanout_runs SET started_at = now() - interval '2 days' WHERE id = 'fanout_old'")
        g = await scrape(client)
    assert g.get("ainfera_queue_depth", queue="batch") == 1
    assert {dict(k)["outcome"]: v for k, v in g.matching("ainfera_fanout_last_run_probes").items()} == {
        "passed": 3, "failed": 2, "skipped": 1}
    assert g.total("ainfera_scrape_errors_total") == 0


def test_a_worker_metrics_port_serves_the_registry_and_a_taken_port_is_skipped():
    from shared.metrics import Metrics
    from shared.metrics.serve import metrics_port

    m = Metrics()
    m.reconciler_requeued.inc(2)
    with metrics_port(m.registry, "127.0.0.1", 0) as off:
        assert off is None
    port = free_port()
    with metrics_port(m.registry, "127.0.0.1", port) as served:
        assert served == port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert Scrape(text).get("ainfera_reconciler_requeued_total") == 2
        with metrics_port(m.registry, "127.0.0.1", port) as taken:
            assert taken is None  # logged; the process runs on without it
    with metrics_port(m.registry, "127.0.0.1", port) as again:  # the port was let go on exit
        assert again == port
