"""Spans for tests: the SDK's in-memory exporter as this test process's tracer provider.

A process has one tracer provider and OpenTelemetry lets it be set once, so it is installed once
per session and cleared by each test. Only code whose settings turn tracing on records spans
into it; every other test keeps the no-op tracing it always had.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Tracing on, as OTEL_TRACES_EXPORTER=otlp turns it on; the spans go to the provider installed here.
TRACED = {"otel_traces_exporter": "otlp"}


@functools.cache
def memory_exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # exported as each span ends
    trace.set_tracer_provider(provider)
    return exporter


def trace_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]


async def finished_span(exporter: InMemorySpanExporter, name: str, attribute: str, value: str,
                        timeout_s: float = 10) -> ReadableSpan:
    """The finished span named `name` whose `attribute` is `value` (a job's span ends after its
    caller was answered: wait for it, boundedly)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        for s in exporter.get_finished_spans():
            if s.name == name and s.attributes is not None and s.attributes.get(attribute) == value:
                return s
        assert loop.time() < deadline, sorted(s.name for s in exporter.get_finished_spans())
        await asyncio.sleep(0.02)


async def whole_trace(exporter: InMemorySpanExporter, trace_id: int, names: Iterable[str],
                      timeout_s: float = 10) -> dict[str, ReadableSpan]:
    """The trace's spans by name, once every one of `names` has finished."""
    wanted = set(names)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        spans = trace_of(exporter, trace_id)
        if wanted <= {s.name for s in spans}:
            by_name = {s.name: s for s in spans}
            assert len(by_name) == len(spans), sorted(s.name for s in spans)  # each name once
            return by_name
        assert loop.time() < deadline, sorted(s.name for s in spans)
        await asyncio.sleep(0.02)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def attribute_text(spans: Iterable[ReadableSpan]) -> str:
    """Every attribute of `spans`, names and values, and their status descriptions, as one text."""
    parts: list[str] = []
    for s in spans:
        parts.append(s.name)
        parts.extend(f"{k}={v}" for k, v in (s.attributes or {}).items())
        parts.append(str(s.status.description))
        for event in s.events:
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)
