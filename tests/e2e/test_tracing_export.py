"""Tracing turned on by the standard variables alone, in real processes: gateway and worker export
OTLP over HTTP to a collector this test runs, and one call is one trace across both, with its
trace id on the worker's log line."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from redis import Redis

from tests.e2e.conftest import base_env, stop, wait_http
from tests.harness import REDIS_BASE, create_template, drop_database, dsn_for, free_port

pytestmark = pytest.mark.e2e
REDIS_DB = 8
TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@dataclass(frozen=True)
class Received:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver (protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[Received] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        received = []
        for rs in request.resource_spans:
            service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
            for scope in rs.scope_spans:
                for s in scope.spans:
                    attributes = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes}
                    received.append(Received(service, s.name, s.trace_id.hex(), s.span_id.hex(),
                                             s.parent_span_id.hex(), attributes))
        with self.server.lock:
            self.server.spans.extend(received)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: object) -> None:
        return None


@contextlib.contextmanager
def collecting() -> Iterator[Collector]:
    collector = Collector()
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        collector.shutdown()
        collector.server_close()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Collector, Path]]:
    name = f"ainfera_otel_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_template(name))
    Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()
    logs = tmp_path_factory.mktemp("otel")
    gw_port, sim_port = free_port(), free_port()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with collecting() as collector, contextlib.ExitStack() as files:
        env = base_env(dsn_for(name), REDIS_DB)
        env.update({
            "AINFERA_GATEWAY_PORT": str(gw_port), "AINFERA_SIM_PORT": str(sim_port), "AINFERA_SIM_LATENCY_MS": "5",
            "AINFERA_UPSTREAM_OVERRIDE": f"http://127.0.0.1:{sim_port}", "AINFERA_LOG_LEVEL": "INFO",
            # What an operator sets: the collector's address turns tracing on. Spans leave every 100 ms.
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
        })
        for var in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
            env.pop(var, None)
        try:
            for proc in ("sim-provider", "worker", "gateway"):
                err = files.enter_context((logs / f"{proc}.log").open("wb"))
                procs[proc] = subprocess.Popen([sys.executable, "-m", "shared.cli.main", proc], env=env, stderr=err)
            wait_http(f"http://127.0.0.1:{sim_port}/healthz", procs["sim-provider"])
            wait_http(f"http://127.0.0.1:{gw_port}/readyz", procs["gateway"])
            tenant = subprocess.run([sys.executable, "-m", "shared.cli.main", "tenant", "create", "--name", "otel"],
                                    env=env, capture_output=True, text=True, timeout=60, check=True)
            key = json.loads(tenant.stdout)["api_key"]
            yield f"http://127.0.0.1:{gw_port}", {"Authorization": f"Bearer {key}"}, collector, logs
        finally:
            stop(procs)
            Redis.from_url(f"{REDIS_BASE}/{REDIS_DB}").flushdb()
            asyncio.run(drop_database(name))


def spans_of(collector: Collector, trace_id: str, names: set[str], timeout_s: float = 15) -> dict[str, Received]:
    deadline = time.monotonic() + timeout_s
    while True:
        with collector.lock:
            spans = [s for s in collector.spans if s.trace_id == trace_id]
        if names <= {s.name for s in spans}:
            return {s.name: s for s in spans}
        assert time.monotonic() < deadline, sorted((s.service, s.name) for s in spans)
        time.sleep(0.05)


def test_one_call_is_one_trace_across_the_gateway_and_worker_processes(traced_stack):
    base_url, auth, collector, logs = traced_stack
    body = {"model": "llama-3.3-70b@groq", "messages": [{"role": "user", "content": "the secret word is pelican"}]}
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=30,
                   headers={**auth, "traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"})
    assert r.status_code == 200, r.text
    spans = spans_of(collector, TRACE, {"POST /v1/chat/completions", "send interactive", "process interactive",
                                        "route", "chat llama-3.3-70b-versatile", "commit"})
    server, send, job = spans["POST /v1/chat/completions"], spans["send interactive"], spans["process interactive"]
    assert server.service == send.service == "ainfera-gateway"
    assert {spans[n].service for n in ("process interactive", "route", "chat llama-3.3-70b-versatile", "commit")} == {
        "ainfera-worker"}
    assert server.parent_span_id == CALLER_SPAN
    assert send.parent_span_id == server.span_id and job.parent_span_id == send.span_id
    assert all(spans[n].parent_span_id == job.span_id for n in ("route", "chat llama-3.3-70b-versatile", "commit"))
    assert job.attributes["messaging.message.id"] == r.headers["x-ainfera-job-id"]
    for s in spans.values():
        assert not any("pelican" in str(v) or "sk-ainf-" in str(v) for v in s.attributes.values())

    job_id = r.headers["x-ainfera-job-id"]
    finished = log_line(logs / "worker.log", lambda x: x.get("event") == "job_finished" and x.get("job_id") == job_id)
    assert finished["trace_id"] == TRACE and finished["span_id"] == job.span_id
    access = log_line(logs / "gateway.log", lambda x: x.get("event") == "request" and x.get("trace_id") == TRACE)
    assert access["path"] == "/v1/chat/completions" and access["span_id"] == server.span_id


def log_line(path: Path, match: Callable[[dict[str, Any]], bool], timeout_s: float = 15) -> dict[str, Any]:
    """The first JSON log line of a process that `match`es (summary lines come after the answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]
        found = [x for x in lines if match(x)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, lines[-20:]
        time.sleep(0.05)
