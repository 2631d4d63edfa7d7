"""CPU time tracing adds to one synchronous call, off (the default) and on, in process.

Runs the span calls one call makes, in the order it makes them (the gateway's enqueue, the
worker's job, routing, the upstream call, the commit) with the helpers the code uses, and
times them in process CPU: off with the no-op `Tracing`; on with an SDK tracer provider whose
batch processor exports to nowhere (its thread's CPU is counted; a real exporter's encoding
and sending come on top, in that thread).
FastAPI's server span is not included (off, FastAPI skips it; on, it is one more span).
The figure to set against it is the worker's and gateway's CPU per call in `sync_latency.py`.

    .venv/bin/python bench/tracing_cost.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from shared.job_queue import _send_span
from shared.queue.names import QueueName
from shared.tracing import TRACING_OFF, Tracing
from worker.tasks import _job_span, _outcome_on


class Nowhere(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_call(tracing: Tracing) -> None:
    res: Any = SimpleNamespace(tracing=tracing)
    with _send_span(tracing, QueueName.INTERACTIVE, "job_01m9bench"):
        traceparent = tracing.traceparent()
    with _job_span(res, {"job_try": 1}, QueueName.INTERACTIVE, "job_01m9bench", traceparent) as job:
        if job.is_recording():
            job.set_attributes({"ainfera.job.kind": "sync", "ainfera.tenant_id": "59426a30-0a49-43fe-bd55"})
        with tracing.span("route") as span:
            if span.is_recording():
                span.set_attributes({"ainfera.requested_model": "llama-3.3-70b@groq", "ainfera.auto": False,
                                     "ainfera.model": "llama-3.3-70b@groq", "ainfera.candidates": 1})
        upstream = tracing.span("chat llama-3.3-70b-versatile", kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "groq",
            "gen_ai.request.model": "llama-3.3-70b-versatile", "ainfera.model": "llama-3.3-70b@groq",
            "ainfera.streamed": False}) if tracing.on else tracing.span("")
        with upstream as span:
            if span.is_recording():
                span.set_attributes({"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 5,
                                     "ainfera.upstream.attempts": 1})
        with tracing.span("commit") as span:
            if span.is_recording():
                span.set_attributes({"ainfera.job.status": "succeeded", "ainfera.written": True,
                                     "ainfera.receipt_id": "rcpt_01m9bench"})
        _outcome_on(job, None)


def per_call_us(tracing: Tracing, calls: int) -> float:
    for _ in range(min(calls, 1000)):  # warm up
        one_call(tracing)
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(calls):
            one_call(tracing)
        best = min(best, (time.process_time() - t0) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere(), max_queue_size=1 << 20))
    on = Tracing(provider.get_tracer("bench"))
    print(f"tracing off: {per_call_us(TRACING_OFF, args.calls):.2f} us CPU per call (best of 5 x {args.calls})")
    print(f"tracing on:  {per_call_us(on, args.calls // 10):.2f} us CPU per call (6 spans, batch export to nowhere)")
    provider.shutdown()


if __name__ == "__main__":
    main()
