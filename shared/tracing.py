"""OpenTelemetry tracing, off unless the standard `OTEL_*` variables turn it on (`Settings.tracing`):
one trace per call, from the gateway's request through the queue to the worker's routing, upstream
call and commit.

`Tracing` is what code holds (`Resources.tracing`). Off, `span()` returns one shared no-op context
and `traceparent()` is None: the hot path pays an attribute test, no SDK is loaded and no context
is switched. On, spans come from the process's tracer provider, which `install_tracer_provider`
sets once per process entry point, beside `configure_logging`. The trace crosses the queue as a
W3C `traceparent` string in the job's kwargs (`DispatchJob.traceparent`).

What spans carry: route templates, queue names, job ids, provider and model names, token counts,
statuses and error codes. Never a prompt, a completion or a key, and no exception message (an
upstream's error text may quote the prompt): a failed span records the error's stable code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

TRACER_NAME = "ainfera-dispatch"
TRACEPARENT = "traceparent"

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]

_PROPAGATOR = TraceContextTextMapPropagator()  # W3C trace context only: no baggage crosses the queue
_OFF: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)  # reusable: it holds no state


class TracingMisconfigured(RuntimeError):
    """The OTEL_* variables ask for something this deployment cannot do."""


class Tracing:
    """Spans for the code that holds it; a constant no-op when tracing is off."""

    __slots__ = ("_tracer",)

    def __init__(self, tracer: Tracer | None = None) -> None:
        self._tracer = tracer

    @staticmethod
    def from_settings(settings: Settings) -> Tracing:
        """On when the settings say so, with the process's tracer provider (installed at its entry
        point; until then, the API's no-op one)."""
        return Tracing(trace.get_tracer(TRACER_NAME)) if settings.tracing else TRACING_OFF

    @property
    def on(self) -> bool:
        return self._tracer is not None

    def span(self, name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes | None = None,
             parent: Mapping[str, str] | None = None) -> AbstractContextManager[Span]:
        """A span, current while the block runs; a child of the current span, or of the W3C context
        in `parent` (a `traceparent` and maybe a `tracestate`) when one is given."""
        if self._tracer is None:
            return _OFF
        context = _PROPAGATOR.extract(parent) if parent else None
        return _recorded(self._tracer, name, kind, attributes, context)

    def traceparent(self) -> str | None:
        """The current span's context as a W3C `traceparent`, for a job to carry; None when off."""
        if self._tracer is None:
            return None
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get(TRACEPARENT)


TRACING_OFF = Tracing()


@contextlib.contextmanager
def _recorded(tracer: Tracer, name: str, kind: SpanKind, attributes: Attributes | None,
              context: Any) -> Iterator[Span]:
    # The SDK's own exception recording would write the exception's message (and its status
    # description); an upstream's error text may quote the prompt, so only the code is kept.
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as e:
            failed(span, error_type(e))
            raise


def error_type(e: BaseException) -> str:
    """What a span says about an error: our stable code, else the exception's class name."""
    code = getattr(e, "code", None)
    return code if isinstance(code, str) and code else type(e).__name__


def failed(span: Span, error: str) -> None:
    """Mark `span` as failed with `error` (a code or a class name, never a message)."""
    span.set_attribute("error.type", error)
    span.set_status(StatusCode.ERROR, error)


def parent_of(traceparent: str | None) -> Mapping[str, str] | None:
    """The carrier `Tracing.span(parent=...)` takes, for a job's `traceparent`."""
    return {TRACEPARENT: traceparent} if traceparent else None


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor, installed when tracing is on: every line logged under a span carries
    its `trace_id` and `span_id` (lowercase hex, as W3C and the OTLP backends show them)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def install_tracer_provider(settings: Settings, *, process: str) -> TracerProvider | None:
    """Set this process's tracer provider from the settings (once, at the entry point); None when
    tracing is off, and then nothing of the SDK is imported.

    The SDK reads its other standard variables itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    (the service is `ainfera-<process>` when neither names it), OTEL_TRACES_SAMPLER(_ARG),
    OTEL_BSP_* and OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, compression).
    """
    if not settings.tracing:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"ainfera-{process}"}))
    provider = TracerProvider(resource=resource)
    for name in settings.traces_exporters:
        # console: one JSON object per span on stdout, for a look rather than for keeps.
        exporter: SpanExporter = _otlp_exporter(settings) if name == "otlp" else ConsoleSpanExporter()
        # Batched: spans leave from the processor's thread, never from a request's or a job's path.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter(settings: Settings) -> Any:
    protocol = (settings.otel_exporter_otlp_traces_protocol or settings.otel_exporter_otlp_protocol or "").strip()
    if protocol and protocol != "http/protobuf":
        raise TracingMisconfigured(f"OTLP protocol {protocol!r} is not installed here; traces are exported over "
                                   "http/protobuf (unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to http/protobuf)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
