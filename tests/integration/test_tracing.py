"""One connected trace per call, through the real gateway, Redis queue, worker, simulated provider
and Postgres: gateway request -> enqueue -> worker job -> routing, upstream call, commit."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from shared.logging import event_processors
from shared.settings import Settings
from tests.harness import make_settings, new_tenant, running_gateway, running_worker, seeded_catalog
from tests.integration.conftest import REDIS_DB
from tests.integration.spans import (
    TRACED,
    attribute_text,
    finished_span,
    memory_exporter,
    parent_id,
    span_id,
    whole_trace,
)

pytestmark = pytest.mark.integration

PROMPT = "the secret word is pelican"
CHAT = {"model": "llama-3.3-70b@groq", "messages": [{"role": "user", "content": PROMPT}]}
CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
CALLER_TRACEPARENT = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"
DISPATCH_SPANS = ("route", "chat llama-3.3-70b-versatile", "commit")


@pytest.fixture
def traced_settings(database_url: str, redis_flushed, sim_url: str) -> Settings:
    return make_settings(database_url, REDIS_DB, upstream_override=sim_url, **TRACED)


@pytest.fixture
async def traced(traced_settings: Settings, sim):
    exporter = memory_exporter()
    exporter.clear()
    _, key = await new_tenant(traced_settings, "traced")
    async with running_worker(traced_settings), running_gateway(traced_settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, exporter, key


def assert_dispatch_children(spans, job_span) -> None:
    """Routing, the upstream call and the commit are children of the worker's job span."""
    route, upstream, commit = (spans[name] for name in DISPATCH_SPANS)
    for child in (route, upstream, commit):
        assert parent_id(child) == span_id(job_span)
    assert route.attributes["ainfera.model"] == "llama-3.3-70b@groq"
    assert upstream.kind == SpanKind.CLIENT
    assert upstream.attributes["gen_ai.provider.name"] == "groq"
    assert upstream.attributes["gen_ai.request.model"] == "llama-3.3-70b-versatile"
    assert upstream.attributes["ainfera.model"] == "llama-3.3-70b@groq"
    assert upstream.attributes["gen_ai.usage.output_tokens"] > 0
    assert commit.attributes["ainfera.job.status"] == "succeeded" and commit.attributes["ainfera.written"] is True
    assert route.start_time <= upstream.start_time <= commit.start_time


async def test_a_call_is_one_trace_from_the_callers_span_to_the_commit(traced):
    client, auth, exporter, key = traced
    r = await client.post("/v1/chat/completions", json=CHAT, headers={**auth, "traceparent": CALLER_TRACEPARENT})
    assert r.status_code == 200, r.text
    job_id = r.headers["x-ainfera-job-id"]
    spans = await whole_trace(exporter, CALLER_TRACE, (
        "POST /v1/chat/completions", "send interactive", "process interactive", *DISPATCH_SPANS))

    server, send, job = spans["POST /v1/chat/completions"], spans["send interactive"], spans["process interactive"]
    assert parent_id(server) == CALLER_SPAN and server.kind == SpanKind.SERVER  # the caller's span is the parent
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    assert parent_id(send) == span_id(server) and send.kind == SpanKind.PRODUCER
    assert parent_id(job) == span_id(send) and job.kind == SpanKind.CONSUMER  # across the queue
    assert send.attributes["messaging.message.id"] == job.attributes["messaging.message.id"] == job_id
    assert job.attributes["ainfera.job.http_status"] == 200 and job.status.status_code != StatusCode.ERROR
    assert_dispatch_children(spans, job)
    assert spans["commit"].attributes["ainfera.receipt_id"] == r.headers["x-ainfera-receipt-id"]

    text = attribute_text(spans.values())
    for secret in (PROMPT, "pelican", key):
        assert secret not in text


async def test_without_a_callers_traceparent_the_gateway_span_is_the_root(traced):
    client, auth, exporter, _ = traced
    r = await client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert r.status_code == 200, r.text
    job = await finished_span(exporter, "process interactive", "messaging.message.id", r.headers["x-ainfera-job-id"])
    spans = await whole_trace(exporter, job.context.trace_id, ("POST /v1/chat/completions", "send interactive",
                                                               "process interactive", *DISPATCH_SPANS))
    assert spans["POST /v1/chat/completions"].parent is None
    assert len(spans) == 6  # nothing else joined this trace
    for probe in ("/healthz", "/readyz"):  # probes are not traced; a traced request's span ends with its answer
        assert (await client.get(probe)).status_code == 200
    assert (await client.get("/v1/models", headers=auth)).status_code == 200
    assert [s.name for s in exporter.get_finished_spans() if s.name.startswith("GET")] == ["GET /v1/models"]


async def test_a_streamed_call_is_one_trace(traced):
    client, auth, exporter, _ = traced
    body = {**CHAT, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body,
                             headers={**auth, "traceparent": CALLER_TRACEPARENT}) as r:
        assert r.status_code == 200
        events = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    spans = await whole_trace(exporter, CALLER_TRACE, (
        "POST /v1/chat/completions", "send interactive", "process interactive", *DISPATCH_SPANS))
    job = spans["process interactive"]
    assert parent_id(job) == span_id(spans["send interactive"])
    assert parent_id(spans["send interactive"]) == span_id(spans["POST /v1/chat/completions"])
    assert_dispatch_children(spans, job)
    assert spans["chat llama-3.3-70b-versatile"].attributes["ainfera.streamed"] is True
    # The gateway's span lasts as long as the stream it relays.
    assert spans["POST /v1/chat/completions"].end_time >= spans["commit"].start_time


async def test_an_async_call_carries_its_trace_through_its_stored_job(traced):
    client, auth, exporter, _ = traced
    r = await client.post("/v1/chat/completions", json=CHAT,
                          headers={**auth, "Prefer": "respond-async", "traceparent": CALLER_TRACEPARENT})
    assert r.status_code == 202, r.text
    spans = await whole_trace(exporter, CALLER_TRACE, (
        "POST /v1/chat/completions", "send batch", "process batch", *DISPATCH_SPANS))
    job = spans["process batch"]
    assert parent_id(job) == span_id(spans["send batch"])
    assert job.attributes["ainfera.job.kind"] == "async" and job.attributes["messaging.message.id"] == r.json()["id"]
    assert_dispatch_children(spans, job)


async def test_a_batch_line_is_a_trace_of_its_own_from_the_worker(traced):
    client, auth, exporter, _ = traced
    line = {"custom_id": "one", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    up = await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                           files={"file": ("requests.jsonl", orjson.dumps(line) + b"\n", "application/jsonl")})
    assert up.status_code == 200, up.text
    created = await client.post("/v1/batches", headers=auth, json={
        "input_file_id": up.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    job = await finished_span(exporter, "process batch", "ainfera.batch_id", batch_id)
    spans = await whole_trace(exporter, job.context.trace_id, ("process batch", *DISPATCH_SPANS))
    # Lines are fed from Postgres by the supervisor, long after the request that created the batch.
    assert job.parent is None and job.attributes["ainfera.job.kind"] == "batch"
    assert_dispatch_children(spans, job)


async def test_a_failed_upstream_call_marks_its_spans_with_the_error_code_only(traced):
    client, auth, exporter, _ = traced
    body = {**CHAT, "messages": [{"role": "user", "content": f"{PROMPT} [sim:fail=500]"}]}
    r = await client.post("/v1/chat/completions", json=body, headers={**auth, "traceparent": CALLER_TRACEPARENT})
    assert r.status_code == 502, r.text
    spans = await whole_trace(exporter, CALLER_TRACE, ("process interactive", "chat llama-3.3-70b-versatile",
                                                       "commit"))
    upstream, job = spans["chat llama-3.3-70b-versatile"], spans["process interactive"]
    code = r.json()["error"]["code"]
    assert upstream.status.status_code == StatusCode.ERROR and upstream.attributes["error.type"] == code
    assert job.status.status_code == StatusCode.ERROR and job.attributes["error.type"] == code
    assert not upstream.events  # no exception event, so no message that could quote the prompt
    assert "pelican" not in attribute_text(spans.values())


async def test_a_fallback_is_one_upstream_span_per_provider_tried(traced, traced_settings, sim):
    client, auth, exporter, _ = traced
    body = {"model": "ainfera-auto", "messages": [{"role": "user", "content": PROMPT}],
            "routing_hint": {"stack": "china"}}
    plan = (await client.post("/v1/routing/explain", json=body, headers=auth)).json()
    first, second = plan["model"], plan["fallbacks"][0]
    catalog = await seeded_catalog(traced_settings)
    up_first, up_second = catalog.models[first].upstream_model, catalog.models[second].upstream_model
    await sim.post("/_sim/faults", json={"model": up_first, "fault": "fail=500"})
    r = await client.post("/v1/chat/completions", json=body, headers={**auth, "traceparent": CALLER_TRACEPARENT})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == second
    spans = await whole_trace(exporter, CALLER_TRACE, ("process interactive", "route", f"chat {up_first}",
                                                       f"chat {up_second}", "commit"))
    failed_call, answered = spans[f"chat {up_first}"], spans[f"chat {up_second}"]
    job = spans["process interactive"]
    assert parent_id(failed_call) == parent_id(answered) == span_id(job)
    assert failed_call.status.status_code == StatusCode.ERROR and failed_call.end_time <= answered.start_time
    assert failed_call.attributes["error.type"] == r.json()["ainfera"]["fallbacks"][0]["error"]["code"]
    assert failed_call.attributes["ainfera.model"] == first and answered.attributes["ainfera.model"] == second
    assert answered.status.status_code != StatusCode.ERROR and job.status.status_code != StatusCode.ERROR
    assert spans["route"].attributes["ainfera.auto"] is True and spans["route"].attributes["ainfera.model"] == first


async def test_tracing_off_records_nothing(settings: Settings, sim):
    exporter = memory_exporter()  # a tracer provider is installed in this process, but these settings say off
    exporter.clear()
    _, key = await new_tenant(settings, "untraced")
    async with running_worker(settings), running_gateway(settings) as client:
        r = await client.post("/v1/chat/completions", json=CHAT,
                              headers={"Authorization": f"Bearer {key}", "traceparent": CALLER_TRACEPARENT})
        assert r.status_code == 200
    assert exporter.get_finished_spans() == ()


async def test_every_line_logged_for_a_traced_call_carries_its_trace_id(traced, traced_settings):
    client, auth, exporter, _ = traced
    with capture_logs(event_processors(traced_settings)) as logs:
        r = await client.post("/v1/chat/completions", json=CHAT, headers={**auth, "traceparent": CALLER_TRACEPARENT})
        assert r.status_code == 200
        job_id = r.headers["x-ainfera-job-id"]
        for _ in range(500):  # the worker logs its summary after the caller was answered (bounded: 10 s)
            if any(e.get("event") == "job_finished" for e in logs):
                break
            await asyncio.sleep(0.02)
    ours = [e for e in logs if e.get("job_id") == job_id or e.get("event") == "request"]
    assert {e["event"] for e in ours} >= {"request", "job_finished"}
    assert all(e.get("trace_id") == f"{CALLER_TRACE:032x}" for e in ours), ours
    spans = await whole_trace(exporter, CALLER_TRACE, ("process interactive",))
    finished = next(e for e in ours if e["event"] == "job_finished")
    assert finished["span_id"] == f"{span_id(spans['process interactive']):016x}"  # logged under the job's span


async def test_with_tracing_off_log_lines_carry_no_trace_id(client_untraced, settings):
    client, auth = client_untraced
    with capture_logs(event_processors(settings)) as logs:
        r = await client.post("/v1/chat/completions", json=CHAT, headers={**auth, "traceparent": CALLER_TRACEPARENT})
        assert r.status_code == 200
    assert any(e.get("event") == "request" for e in logs)
    assert not any("trace_id" in e for e in logs)


@pytest.fixture
async def client_untraced(settings: Settings, sim):
    _, key = await new_tenant(settings, "untraced")
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}
