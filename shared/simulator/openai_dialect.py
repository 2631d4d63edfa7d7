"""The simulator speaking OpenAI chat completions: validation, answers and errors in OpenAI's shapes.

Shared by every OpenAI-compatible vendor it impersonates (Groq, DeepSeek, Fireworks...),
so the strictness is the common denominator of their documented behaviour.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from shared.simulator.answers import Answer, ToolSpec, argument_pieces, message_tokens, text_pieces
from shared.simulator.dialect import ParsedRequest, Reply
from shared.simulator.knowledge import ProviderFacts

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_FAILURE_MESSAGES = {
    400: "Invalid request (simulated).",
    401: "Incorrect API key provided. You can find your API key in your account settings.",
    403: "You are not allowed to sample from this model.",
    429: "Rate limit reached for requests. Please try again in {retry}s.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}
_FAILURE_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


class OpenAIDialect:
    def check_headers(self, facts: ProviderFacts, headers: Mapping[str, str]) -> Reply | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        if key.strip() == "invalid":
            return self.error(401, _FAILURE_MESSAGES[401], code="invalid_api_key")
        return None

    def parse(self, payload: Any) -> ParsedRequest | Reply:
        if not isinstance(payload, dict):
            return self.invalid_json()
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            return self.error(400, "you must provide a model parameter", param="model")
        messages = payload.get("messages")
        if messages is None:
            return self.error(
                400,
                "Missing required parameter: 'messages'.",
                code="missing_required_parameter",
                param="messages",
            )
        if not isinstance(messages, list) or not messages:
            return self.error(400, "'messages' must be a non-empty array.", param="messages")
        counted: list[tuple[str, int]] = []
        last_user_text = ""
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                return self.error(400, f"Invalid value for 'messages[{index}].role'.", param=f"messages[{index}]")
            content = message.get("content")
            if content is not None and not isinstance(content, str | list):
                return self.error(400, f"Invalid type for 'messages[{index}].content'.", param=f"messages[{index}]")
            text, images = _message_text(message)
            counted.append((text, images))
            if message["role"] == "user":
                last_user_text = text
        max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return self.error(400, "max_tokens must be a positive integer.", param="max_tokens")
        n = payload.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            return self.error(400, "n must be an integer between 1 and 128.", param="n")
        tools = _tools(payload.get("tools"))
        if tools is None:
            return self.error(400, "Invalid 'tools': each tool needs type 'function' and a name.", param="tools")
        effort = payload.get("reasoning_effort")
        if effort is not None and not isinstance(effort, str):
            return self.error(400, "Invalid type for 'reasoning_effort': expected a string.", param="reasoning_effort")
        stream = payload.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            return self.error(400, "Invalid type for 'stream': expected a boolean.", param="stream")
        options = payload.get("stream_options")
        if options is not None and stream is not True:
            # OpenAI's answer, quoted in github.com/BerriAI/litellm/issues/5803 (code null).
            return self.error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                              param="stream_options")
        if options is not None and not isinstance(options, dict):
            return self.error(400, "Invalid type for 'stream_options': expected an object.", param="stream_options")
        choice = payload.get("tool_choice")
        forced: str | None = None
        if choice == "required":
            forced = ""
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            forced = str(choice["function"].get("name") or "")
        return ParsedRequest(
            model=model,
            prompt_tokens=sum(message_tokens(text, images) for text, images in counted),
            last_user_text=last_user_text,
            max_tokens=max_tokens,
            tools=tools,
            forced_tool=forced,
            tools_disabled=choice == "none",
            choices=n,
            conversation=messages,
            reasoning_effort=effort,
            stream=stream is True,
            include_usage=bool(options and options.get("include_usage") is True),
            answer_schema=_answer_schema(payload.get("response_format")),
        )

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> Reply:
        kind = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return Reply(status, orjson.dumps(body))

    def invalid_json(self) -> Reply:
        return self.error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)",
        )

    def unknown_url(self, method: str, path: str) -> Reply:
        return self.error(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def model_not_found(self, model: str) -> Reply:
        return self.error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def unsupported_value(self, param: str, value: str, supported: tuple[str, ...]) -> Reply:
        # OpenAI's wording, e.g. "Unsupported value: 'reasoning_effort' does not support 'none' with this
        # model. Supported values are: 'minimal', 'low', 'medium', and 'high'." (quoted in
        # github.com/Kilo-Org/cloud/pull/3807); code `unsupported_value`.
        quoted = [f"'{v}'" for v in supported]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
        return self.error(
            400,
            f"Unsupported value: '{param}' does not support '{value}' with this model. Supported values are: "
            f"{listed}.",
            code="unsupported_value",
            param=param,
        )

    def unsupported(self) -> Reply:
        # o3-mini's answer, quoted in github.com/BeehiveInnovations/pal-mcp-server/issues/78.
        return self.error(400, "Unsupported parameter: 'temperature' is not supported with this model.",
                          code="unsupported_parameter", param="temperature")

    def failure(self, status: int, *, model: str, retry_after_s: float) -> Reply:
        template = _FAILURE_MESSAGES.get(status, f"Simulated failure (HTTP {status}).")
        reply = self.error(status, template.format(retry=f"{retry_after_s:g}"), code=_FAILURE_CODES.get(status))
        if status != 429:
            return reply
        headers = (
            (b"retry-after", _seconds_header(retry_after_s)),
            (b"retry-after-ms", str(round(retry_after_s * 1000)).encode()),
        )
        return Reply(reply.status, reply.body, headers)

    def completion(self, request: ParsedRequest, answer: Answer) -> Reply:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        finish = "length" if answer.truncated_by_max_tokens else "stop"
        if answer.tool_call is not None:
            call = answer.tool_call
            message["tool_calls"] = [
                {
                    "id": f"call_{call.id}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": orjson.dumps(call.arguments).decode()},
                }
            ]
            finish = "tool_calls"
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(request.choices)
        ]
        completion_tokens = answer.completion_tokens * request.choices
        body = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": choices,
            "usage": _usage(request.prompt_tokens, completion_tokens, request),
            "system_fingerprint": None,
        }
        return Reply(200, orjson.dumps(body))

    def stream(self, request: ParsedRequest, answer: Answer) -> tuple[bytes, ...]:
        """OpenAI's chat.completion.chunk events (OpenAPI spec `CreateChatCompletionStreamResponse`):
        every chunk has the same id, created and model; the first delta of a choice carries the role,
        later ones content or `tool_calls[].function.arguments` pieces, the last an empty delta with
        the finish reason. With `include_usage`, every chunk has `"usage": null` and one more chunk,
        with `"choices": []`, has the usage; then `data: [DONE]`."""
        head = {"id": f"chatcmpl-{secrets.token_hex(12)}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": request.model, "system_fingerprint": None}
        if request.include_usage:
            head["usage"] = None
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "" if answer.tool_call is None else None,
                                         "refusal": None}]
        finish = "length" if answer.truncated_by_max_tokens else "stop"
        if answer.tool_call is not None:
            call = answer.tool_call
            deltas.append({"tool_calls": [{"index": 0, "id": f"call_{call.id}", "type": "function",
                                           "function": {"name": call.name, "arguments": ""}}]})
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                       for piece in argument_pieces(orjson.dumps(call.arguments).decode())]
            finish = "tool_calls"
        else:
            deltas += [{"content": piece} for piece in text_pieces(answer.text or "")]
        events: list[bytes] = []
        for delta in deltas:
            choices = [{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}
                       for i in range(request.choices)]
            events.append(_event({**head, "choices": choices}))
        events.append(_event({**head, "choices": [{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish}
                                                   for i in range(request.choices)]}))
        if request.include_usage:
            completion_tokens = answer.completion_tokens * request.choices
            events.append(_event({**head, "choices": [], "usage": _usage(request.prompt_tokens, completion_tokens,
                                                                               request)}))
        events.append(b"data: [DONE]\n\n")
        return tuple(events)

    def malformed(self) -> Reply:
        return Reply(200, b'{"id": "chatcmpl-sim", "object": "chat.completion", "choices": [{"index": 0,, }')


def _usage(prompt_tokens: int, completion_tokens: int, request: ParsedRequest) -> dict[str, Any]:
    """OpenAI's usage block, with the detail objects it sends (nothing is reasoned here); cached
    prompt tokens as `prompt_cache.py` found them, in DeepSeek's own fields for DeepSeek."""
    cached = request.cache.read if request.cache else 0
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if request.cache is not None and request.cache.style == "deepseek":
        return {**usage, "prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": prompt_tokens - cached}
    return {**usage, "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


# console.groq.com/docs/openai, "Currently Unsupported OpenAI Features": these fields "will result
# in a 400 error if they are supplied", and "If N is supplied, it must be equal to 1".
_GROQ_REFUSED = ("logprobs", "logit_bias", "top_logprobs")


def vendor_refusal(dialect: OpenAIDialect, provider: str, payload: dict[str, Any]) -> Reply | None:
    """A vendor's own documented refusal of a field OpenAI itself accepts, or None."""
    if provider != "groq":
        return None
    for name in _GROQ_REFUSED:
        if payload.get(name) is not None:
            return dialect.error(400, f"'{name}' is not supported", param=name)
    if payload.get("n", 1) not in (1, None):
        return dialect.error(400, "'n' : number must be at most 1", param="n")
    for index, message in enumerate(payload.get("messages") or ()):
        if isinstance(message, dict) and "name" in message:
            return dialect.error(400, f"'messages.{index}' : property 'name' is unsupported",
                                 param=f"messages[{index}].name")
    return None


def _answer_schema(response_format: Any) -> Mapping[str, Any] | None:
    """The schema a structured answer must follow ({} for JSON mode), or None for text."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return {}
    spec = response_format.get("json_schema")
    if response_format.get("type") == "json_schema" and isinstance(spec, dict):
        schema = spec.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _message_text(message: Mapping[str, Any]) -> tuple[str, int]:
    """The countable text of one message and its number of images."""
    content = message.get("content")
    parts: list[str] = []
    images = 0
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(str(function.get("name") or "") + str(function.get("arguments") or ""))
    return "".join(parts), images


def _tools(raw: Any) -> tuple[ToolSpec, ...] | None:
    """Offered function tools, () when none, None when the list is ill-formed."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return None
    tools: list[ToolSpec] = []
    for tool in raw:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return None
        schema = function.get("parameters")
        tools.append(ToolSpec(function["name"], schema if isinstance(schema, dict) else {}))
    return tuple(tools)


def _seconds_header(seconds: float) -> bytes:
    """Retry-After carries whole seconds (RFC 9110), rounded up so a client never retries early."""
    return str(math.ceil(seconds)).encode()
