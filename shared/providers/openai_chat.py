"""The adapter for every OpenAI-compatible vendor (OpenAI, Groq, DeepSeek, Fireworks, ...).

The body is already an OpenAI chat-completions request, so building is a pass-through
with the upstream model name swapped in; parsing checks the parts we rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import ProviderNotConfigured, UpstreamError, UpstreamMalformed
from shared.providers.classify import (
    UpstreamFault,
    classify,
    decode_object,
    looks_like_model_not_found,
    scrub,
    token_count,
    try_decode_object,
)
from shared.providers.stream import AssembledStream
from shared.providers.types import Completion, UpstreamRequest

# The caller's streaming choice is the gateway's business: the worker asks upstream for a stream
# itself (`build_stream`), always with usage, because the receipt needs real token counts.
_NOT_FORWARDED = ("stream", "stream_options")


class OpenAIChatAdapter:
    """Builds and parses OpenAI chat-completions calls. Stateless; one instance serves all vendors."""

    def build(self, *, url: str, api_key: str, upstream_model: str, body: Mapping[str, Any]) -> UpstreamRequest:
        return self._build(url, api_key, upstream_model, body, stream=False)

    def build_stream(self, *, url: str, api_key: str, upstream_model: str,
                     body: Mapping[str, Any]) -> UpstreamRequest:
        return self._build(url, api_key, upstream_model, body, stream=True)

    @staticmethod
    def _build(url: str, api_key: str, upstream_model: str, body: Mapping[str, Any], *,
               stream: bool) -> UpstreamRequest:
        if not api_key:
            raise ProviderNotConfigured("no credentials are configured for this provider")
        payload = {name: value for name, value in body.items() if name not in _NOT_FORWARDED}
        payload["model"] = upstream_model
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        return UpstreamRequest(url=url, headers=headers, body=orjson.dumps(payload))

    def stream_reader(self, *, input_tokens_estimate: int) -> OpenAIStreamReader:
        return OpenAIStreamReader(input_tokens_estimate)

    def parse(self, status: int, headers: Mapping[str, str], content: bytes) -> Completion:
        if not 200 <= status < 300:
            raise classify_openai_error(status, headers, content)
        data = decode_object(content, status=status)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UpstreamMalformed(_missing_choices_message(data, status), upstream_status=status)
        if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
            raise UpstreamMalformed("provider answer has a choice without a message", upstream_status=status)
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise UpstreamMalformed("provider answer has no usage block", upstream_status=status)
        prompt_tokens = token_count(usage.get("prompt_tokens"))
        completion_tokens = token_count(usage.get("completion_tokens"))
        if prompt_tokens is None or completion_tokens is None:
            raise UpstreamMalformed(
                "provider answer has no numeric prompt_tokens/completion_tokens", upstream_status=status
            )
        upstream_id = data.get("id")
        upstream_model = data.get("model")
        return Completion(
            choices=choices,
            input_tokens=prompt_tokens,
            output_tokens=completion_tokens,
            upstream_id=upstream_id if isinstance(upstream_id, str) else None,
            upstream_model=upstream_model if isinstance(upstream_model, str) else None,
            usage_details=usage_details(usage),
            system_fingerprint=_text(data.get("system_fingerprint")),
            service_tier=_text(data.get("service_tier")),
        )


class OpenAIStreamReader(AssembledStream):
    """OpenAI's chunks pass through as they are; a chunk with an `error` object (how OpenAI
    reports a failure after the stream began: the `openai` SDK raises `APIError` on one) is
    classified like an error answer; the usage chunk (`choices: []`) gives the real counts."""

    def event(self, name: str, data: str) -> list[dict[str, Any]] | None:
        if data.strip() == "[DONE]":
            self.ended = True
            return None
        chunk = decode_object(data.encode(), status=200)
        if isinstance(chunk.get("error"), dict):
            raise classify_openai_error(_stream_error_status(chunk["error"]), {}, data.encode())
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = token_count(usage.get("prompt_tokens"))
            self.output_tokens = token_count(usage.get("completion_tokens"))
            self.usage_details = usage_details(usage)
        self.system_fingerprint = self.system_fingerprint or _text(chunk.get("system_fingerprint"))
        self.service_tier = self.service_tier or _text(chunk.get("service_tier"))
        self.upstream_id = self.upstream_id or _text(chunk.get("id"))
        self.upstream_model = self.upstream_model or _text(chunk.get("model"))
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return None
        self.assembler.add(choices)
        return choices


def usage_details(usage: dict[str, Any]) -> dict[str, Any]:
    """The detail objects of an OpenAI usage block, kept as sent (cached and reasoning tokens).

    DeepSeek reports its cache hits as `prompt_cache_hit_tokens` beside `prompt_cache_miss_tokens`
    (api-docs.deepseek.com/guides/kv_cache; both are parts of `prompt_tokens`); they become
    `prompt_tokens_details.cached_tokens` when the provider did not send that itself."""
    names = ("prompt_tokens_details", "completion_tokens_details")
    details = {k: usage[k] for k in names if isinstance(usage.get(k), dict)}
    hits = token_count(usage.get("prompt_cache_hit_tokens"))
    prompt = details.get("prompt_tokens_details") or {}
    if hits is not None and token_count(prompt.get("cached_tokens")) is None:
        details["prompt_tokens_details"] = {**prompt, "cached_tokens": hits}
    return details


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _stream_error_status(error: dict[str, Any]) -> int:
    """An error inside a 200 stream has no status of its own; its type tells what it would have been."""
    kind = str(error.get("type") or "")
    return 429 if "rate" in kind or kind == "requests" else 400 if kind == "invalid_request_error" else 500


def classify_openai_error(status: int, headers: Mapping[str, str], content: bytes) -> UpstreamError:
    """Read an OpenAI-style error envelope (or a vendor's variant of it) and classify it."""
    message, code = _error_message_and_code(try_decode_object(content))
    fault = UpstreamFault(message=message, code=code, model_not_found=looks_like_model_not_found(code, message))
    return classify(status, headers, fault)


def _error_message_and_code(data: dict[str, Any] | None) -> tuple[str, str | None]:
    """`{"error": {"message", "code", "type"}}` as OpenAI sends it, or the flatter shapes some vendors use."""
    if data is None:
        return "", None
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code") if isinstance(error.get("code"), str) else error.get("type")
        return (message if isinstance(message, str) else ""), (code if isinstance(code, str) else None)
    for key in ("error", "message", "detail"):
        value = data.get(key)
        if isinstance(value, str):
            return value, None
    return "", None


def _missing_choices_message(data: dict[str, Any], status: int) -> str:
    message, _ = _error_message_and_code(data)
    if message:
        return f"provider answered HTTP {status} with an error instead of choices: {scrub(message)}"
    return "provider answer has no choices"
