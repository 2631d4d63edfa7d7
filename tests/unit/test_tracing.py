"""Tracing's switch (the standard OTEL_* variables), its no-op when off, the W3C context a job carries,
what a failed span keeps, and the trace ids on log lines."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError

from shared.errors import UpstreamError
from shared.jobs import DispatchJob, JobKind
from shared.logging import event_processors
from shared.settings import Settings
from shared.tracing import TRACING_OFF, Tracing, TracingMisconfigured, _otlp_exporter, add_trace_ids, parent_of

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def env_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize(("env", "exporters"), [
    ({}, ()),  # off by default, unlike the spec's default exporter
    ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
    ({"OTEL_TRACES_EXPORTER": "console, OTLP"}, ("console", "otlp")),
    ({"OTEL_TRACES_EXPORTER": "none"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp,none"}, ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ("otlp",)),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, ()),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, ()),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "1"}, ("otlp",)),  # only "true" is true (the spec)
])
def test_the_standard_variables_turn_tracing_on(monkeypatch, env, exporters):
    settings = env_settings(monkeypatch, **env)
    assert settings.traces_exporters == exporters
    assert settings.tracing is bool(exporters)


def test_an_exporter_this_deployment_cannot_run_is_refused_at_startup(monkeypatch):
    with pytest.raises(ValidationError, match="OTEL_TRACES_EXPORTER names zipkin"):
        env_settings(monkeypatch, OTEL_TRACES_EXPORTER="otlp,zipkin")


def test_an_otlp_protocol_other_than_http_protobuf_is_refused(monkeypatch):
    with pytest.raises(TracingMisconfigured, match="grpc"):
        _otlp_exporter(env_settings(monkeypatch, OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"))
    settings = env_settings(monkeypatch, OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf")  # the per-signal variable wins
    assert type(_otlp_exporter(settings)).__name__ == "OTLPSpanExporter"


def test_off_is_one_shared_no_op():
    assert Tracing.from_settings(Settings(otel_traces_exporter="none")) is TRACING_OFF
    assert not TRACING_OFF.on
    assert TRACING_OFF.span("a") is TRACING_OFF.span("b", kind=SpanKind.CLIENT, parent=parent_of(TRACEPARENT))
    with TRACING_OFF.span("a") as span:
        assert not span.is_recording()
        assert TRACING_OFF.traceparent() is None


@pytest.fixture
def local():
    """A tracer of a provider of its own (the process's global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider.get_tracer("test")), exporter
    provider.shutdown()


def test_a_span_joins_the_trace_a_job_carries_and_hands_it_on(local):
    tracing, exporter = local
    with tracing.span("process", kind=SpanKind.CONSUMER, parent=parent_of(TRACEPARENT)) as span:
        carried = tracing.traceparent()
        own = span.get_span_context()
    assert carried == f"00-{TRACE}-{own.span_id:016x}-01"
    (finished,) = exporter.get_finished_spans()
    assert finished.context.trace_id == int(TRACE, 16) and finished.parent.span_id == int(PARENT, 16)
    assert finished.kind == SpanKind.CONSUMER


def test_a_malformed_traceparent_starts_a_new_trace(local):
    tracing, exporter = local
    with tracing.span("process", parent=parent_of("00-not-a-trace-01")):
        pass
    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None


def test_a_failed_span_keeps_the_error_code_never_the_message(local):
    tracing, exporter = local
    with pytest.raises(UpstreamError), tracing.span("chat"):
        raise UpstreamError("provider said: your prompt 'the secret word is pelican' is too long",
                            code="upstream_bad_request")
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code == StatusCode.ERROR
    assert finished.status.description == "upstream_bad_request"
    assert finished.attributes["error.type"] == "upstream_bad_request"
    assert not finished.events  # no exception event: its message could quote the prompt
    with pytest.raises(KeyError), tracing.span("route"):
        raise KeyError("pelican")
    assert exporter.get_finished_spans()[-1].attributes["error.type"] == "KeyError"


def test_a_job_carries_its_traceparent_through_the_queue_entry():
    job = DispatchJob(job_id="job_1", tenant_id=uuid4(), kind=JobKind.SYNC, request=None,
                      submitted_at=datetime.now(UTC))
    assert "traceparent" not in job.to_kwargs()  # tracing off: the entry is what it always was
    traced = DispatchJob.from_kwargs({**job.to_kwargs(), "traceparent": TRACEPARENT})
    assert traced.traceparent == TRACEPARENT
    assert DispatchJob.from_kwargs(traced.to_kwargs()) == traced


def test_log_lines_under_a_span_carry_its_ids(local):
    tracing, _ = local
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}  # no span: nothing added
    with tracing.span("process", parent=parent_of(TRACEPARENT)) as span:
        event = add_trace_ids(None, "info", {"event": "x"})
    assert event["trace_id"] == TRACE and event["span_id"] == f"{span.get_span_context().span_id:016x}"


def test_the_trace_id_processor_is_installed_only_with_tracing_on():
    assert add_trace_ids in event_processors(Settings(otel_traces_exporter="otlp"))
    assert add_trace_ids not in event_processors(Settings())
