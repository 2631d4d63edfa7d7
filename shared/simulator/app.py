"""The simulated provider as one raw ASGI app: route by real host and path, then answer in dialect.

Pipeline for a provider request: exact route -> method -> credentials -> JSON ->
validation -> model name -> the model's parameter rules -> faults (prompt directives,
else control rules) -> answer. Rejections before the fault step answer at once;
everything after waits the latency: a fixed one when configured, else the model's
catalog profile on the compressed clock (`profiles.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import orjson
from starlette.types import Receive, Scope, Send

from shared.catalog.types import WireFormat
from shared.simulator.answers import Answer, choose_tool, json_answer, text_answer, tool_answer
from shared.simulator.anthropic_dialect import AnthropicDialect
from shared.simulator.anthropic_request import Invalid
from shared.simulator.control import handle_control, is_loopback
from shared.simulator.delivery import Delivery, Mode, deliver, read_body, send_json, stream_events
from shared.simulator.dialect import Dialect, ParsedRequest, Reply
from shared.simulator.directives import DEFAULT_RETRY_AFTER_S, Directives, parse_directives
from shared.simulator.faults import FaultBook
from shared.simulator.knowledge import Knowledge, ProviderFacts, load_knowledge
from shared.simulator.openai_dialect import OpenAIDialect, vendor_refusal
from shared.simulator.param_check import refusal as rules_refusal
from shared.simulator.profiles import SKIPPED_HEADER, LatencyPriors
from shared.simulator.prompt_cache import PromptCache, request_usage
from shared.simulator.stats import Stats

_DIALECTS: Mapping[WireFormat, Dialect] = {
    WireFormat.OPENAI_CHAT: OpenAIDialect(),
    WireFormat.ANTHROPIC_MESSAGES: AnthropicDialect(),
}


class SimulatorApp:
    """Every catalog provider at `/{host}{chat path}`, plus the control API. State lives on the instance."""

    def __init__(self, knowledge: Knowledge, *, latency_ms: float | None = 0.0, time_scale: float = 1.0,
                 stream_interval_ms: float | None = None) -> None:
        self.knowledge = knowledge
        self.latency_ms = latency_ms  # None: each model's catalog profile
        self.time_scale = time_scale
        # Between a stream's events; None: none with a fixed latency, the model's pace with a profile.
        self.stream_interval_ms = stream_interval_ms
        self.faults = FaultBook()
        self.stats = Stats()
        self.prompt_cache = PromptCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/healthz" or path.startswith("/_sim/"):
            body = await read_body(receive)
            status, answer = handle_control(method, path, body or b"", self.faults, self.stats,
                                            loopback=is_loopback(scope.get("client")))
            await send_json(send, status, orjson.dumps(answer))
            return
        facts = self.knowledge.by_route.get(path)
        if facts is None:
            await self._unrouted(method, path, receive, send)
            return
        self.stats.request(facts.host)
        body = await read_body(receive)
        if body is None:
            return
        delivery = self._handle(facts, method, _headers(scope), body)
        sent = await deliver(delivery, receive, send)
        if sent is not None:
            self.stats.status(sent)
        if delivery.mode is Mode.STREAM and sent is not None:
            self.stats.stream(await stream_events(delivery, receive, send))

    async def _unrouted(self, method: str, path: str, receive: Receive, send: Send) -> None:
        """A 404 as the provider owning the host would send it, or a plain one for unknown hosts."""
        host = path.lstrip("/").partition("/")[0]
        owner = self.knowledge.by_host.get(host)
        self.stats.request(owner.host if owner else None)
        if owner is None:
            await send_json(send, 404, orjson.dumps({"error": f"unknown host {host!r}"}))
        else:
            reply = _DIALECTS[owner.wire_format].unknown_url(method, path.removeprefix(f"/{host}"))
            await deliver(Delivery(reply), receive, send)
        self.stats.status(404)

    def _handle(self, facts: ProviderFacts, method: str, headers: Mapping[str, str], body: bytes) -> Delivery:
        dialect = _DIALECTS[facts.wire_format]
        if method != "POST":
            return Delivery(dialect.error(405, f"Method {method} not allowed on this endpoint."))
        rejection = dialect.check_headers(facts, headers)
        if rejection is not None:
            return Delivery(rejection)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Delivery(dialect.invalid_json())
        parsed = dialect.parse(payload)
        if isinstance(parsed, Reply):
            return Delivery(parsed)
        if isinstance(dialect, OpenAIDialect) and (refusal := vendor_refusal(dialect, facts.name, payload)):
            return Delivery(refusal)
        self.stats.model(parsed.model)
        self.stats.received(facts.name, parsed.model, payload)
        if parsed.model not in facts.models:
            return Delivery(dialect.model_not_found(parsed.model))
        if (refused := rules_refusal(dialect, facts, parsed.model, payload)) is not None:
            return Delivery(refused)  # what the model's researched rules say the provider refuses
        supported = facts.efforts.get(parsed.model)
        if parsed.reasoning_effort is not None and supported is not None and parsed.reasoning_effort not in supported:
            # Each model accepts its own set of efforts (sources in the catalog's `reasoning_effort`).
            return Delivery(dialect.unsupported_value("reasoning_effort", parsed.reasoning_effort, supported))
        directives = self._directives(facts, parsed)
        fixed_ms = self.latency_ms if directives.latency_ms is None else directives.latency_ms
        profile = facts.profiles[parsed.model]
        if directives.hang:
            return Delivery(None, Mode.HANG)
        if directives.fail_status is not None or directives.malformed or directives.unsupported:
            # A failure comes back after the time to a first token (no output was generated).
            world_ms = profile.pace(parsed.reasoning_effort).ttft_ms
            delay_s = (fixed_ms if fixed_ms is not None else world_ms * self.time_scale) / 1000.0
            if directives.malformed:
                return Delivery(dialect.malformed(), delay_s=delay_s)
            if directives.unsupported:
                return Delivery(dialect.unsupported(), delay_s=delay_s)
            assert directives.fail_status is not None
            retry_after = DEFAULT_RETRY_AFTER_S if directives.retry_after_s is None else directives.retry_after_s
            reply = dialect.failure(directives.fail_status, model=parsed.model, retry_after_s=retry_after)
            return Delivery(reply, delay_s=delay_s)
        try:
            cache = request_usage(self.prompt_cache, facts, headers.get(facts.auth_header, ""), payload, parsed)
        except Invalid as exc:
            return Delivery(dialect.error(400, str(exc)))
        parsed = replace(parsed, cache=cache)
        answer = self._answer(facts, parsed, directives)
        if parsed.stream:
            return self._stream(dialect, parsed, answer, directives, fixed_ms,
                                world_ms=profile.world_ms(answer.completion_tokens, parsed.reasoning_effort),
                                ttft_ms=profile.pace(parsed.reasoning_effort).ttft_ms)
        reply = dialect.completion(parsed, answer)
        if fixed_ms is not None:
            delay_s = fixed_ms / 1000.0
        else:
            world_ms = profile.world_ms(answer.completion_tokens, parsed.reasoning_effort)  # n choices: in parallel
            delay_ms = world_ms * self.time_scale
            delay_s = delay_ms / 1000.0
            skipped = (SKIPPED_HEADER.encode(), str(round(world_ms - delay_ms)).encode())
            reply = replace(reply, headers=(*reply.headers, skipped))
        if directives.truncated:
            return Delivery(reply, Mode.TRUNCATED, delay_s=delay_s)
        if directives.drip_interval_ms is not None:
            return Delivery(reply, Mode.DRIP, delay_s=delay_s, drip_interval_s=directives.drip_interval_ms / 1000)
        return Delivery(reply, delay_s=delay_s)

    def _stream(self, dialect: Dialect, parsed: ParsedRequest, answer: Answer, directives: Directives,
                fixed_ms: float | None, *, world_ms: float, ttft_ms: float) -> Delivery:
        """A streamed answer: the first event after the time to a first token, then one event per
        interval (`[sim:chunk-ms]`, else the simulator's setting, else the model's own pace)."""
        events = dialect.stream(parsed, answer)
        if fixed_ms is not None:
            first_ms, interval_ms = fixed_ms, self.stream_interval_ms or 0.0
        else:
            first_ms = ttft_ms * self.time_scale
            paced = (world_ms - ttft_ms) * self.time_scale / max(1, len(events) - 1)
            interval_ms = self.stream_interval_ms if self.stream_interval_ms is not None else paced
        if directives.chunk_ms is not None:
            interval_ms = directives.chunk_ms
        return Delivery(Reply(200, b""), Mode.STREAM, delay_s=first_ms / 1000.0, drip_interval_s=interval_ms / 1000.0,
                        events=events, cut_after=directives.cut_stream_after)

    def _directives(self, facts: ProviderFacts, parsed: ParsedRequest) -> Directives:
        """Prompt directives win; control rules apply only when the prompt asks for no fault."""
        directives = parse_directives(parsed.last_user_text)
        if not directives.has_fault:
            rule = self.faults.take(facts.host, parsed.model)
            if rule is not None:
                latency = directives.latency_ms if directives.latency_ms is not None else rule.latency_ms
                directives = replace(rule, latency_ms=latency, tool=directives.tool or rule.tool,
                                     nul=directives.nul or rule.nul, chunk_ms=directives.chunk_ms or rule.chunk_ms)
        times = directives.fail_times
        if (
            directives.has_fault
            and times is not None
            and not self.faults.should_fail(_prompt_key(facts, parsed), times)
        ):
            directives = Directives(latency_ms=directives.latency_ms, tool=directives.tool, nul=directives.nul,
                                    chunk_ms=directives.chunk_ms)
        return directives

    @staticmethod
    def _answer(facts: ProviderFacts, parsed: ParsedRequest, directives: Directives) -> Answer:
        """A tool call when tools are offered and either forced or asked for by `[sim:tool]`; else text."""
        wants_tool = directives.tool or parsed.forced_tool is not None
        if parsed.tools and wants_tool and not parsed.tools_disabled:
            tool = choose_tool(parsed.tools, parsed.forced_tool)
            if tool is not None:
                return tool_answer(tool, _prompt_key(facts, parsed).hex()[:24])
        if parsed.answer_schema is not None:
            return json_answer(parsed.answer_schema)
        answer = text_answer(parsed.model, parsed.prompt_tokens, parsed.max_tokens)
        if directives.nul and answer.text is not None:
            answer = replace(answer, text=answer.text.replace(" ", "\x00", 1))  # same token count
        return answer


def create_app(latency_ms: float | None = 0.0, catalog_path: Path | None = None, *, time_scale: float = 1.0,
               priors: LatencyPriors | None = None, stream_interval_ms: float | None = None) -> SimulatorApp:
    """The ASGI app for tests and the server: knowledge from the catalog; a fixed `latency_ms` for
    every answer, or None for each model's catalog profile at `time_scale`."""
    return SimulatorApp(load_knowledge(catalog_path, priors), latency_ms=latency_ms, time_scale=time_scale,
                        stream_interval_ms=stream_interval_ms)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _prompt_key(facts: ProviderFacts, parsed: ParsedRequest) -> bytes:
    """Identifies "the same prompt" for fail-times and tool-call ids: host, model and conversation."""
    conversation = orjson.dumps(parsed.conversation, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(b"\0".join((facts.host.encode(), parsed.model.encode(), conversation))).digest()


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to open or close; answer the server's lifespan messages so it starts cleanly."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
