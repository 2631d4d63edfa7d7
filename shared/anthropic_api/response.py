"""A finished job's answer (an OpenAI `chat.completion` with our `ainfera` block) as an Anthropic
`message`: content blocks, stop reason and usage. The stream's events (`events.py`) use the same
pieces, so a streamed and a plain answer say the same thing."""

from __future__ import annotations

from typing import Any

import orjson

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def message_id(job_id: str) -> str:
    """The id a job's answer carries as an Anthropic message: `msg_` and the job id's own part."""
    return "msg_" + job_id.removeprefix("job_")


def stop_reason(finish_reason: Any) -> str:
    """OpenAI's finish_reason as Anthropic's stop_reason. OpenAI does not say which stop sequence
    ended the answer, so a stop sequence reads as `end_turn`."""
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as a tool_use `input` object. Arguments that are not a JSON
    object (a model may write broken JSON) are kept whole rather than lost."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_unparsed_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def usage(openai_usage: Any) -> dict[str, Any]:
    """OpenAI's usage as Anthropic's. Anthropic's `input_tokens` leaves out cached tokens (read or
    written), which OpenAI's `prompt_tokens` includes; they are reported apart, when known."""
    u = openai_usage if isinstance(openai_usage, dict) else {}
    details = u.get("prompt_tokens_details") if isinstance(u.get("prompt_tokens_details"), dict) else None
    prompt = _count(u.get("prompt_tokens"))
    out: dict[str, Any] = {"input_tokens": prompt, "output_tokens": _count(u.get("completion_tokens"))}
    if details is not None:
        read, written = _count(details.get("cached_tokens")), _count(details.get("cache_write_tokens"))
        out["input_tokens"] = max(0, prompt - read - written)
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = written
    return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """An OpenAI assistant message as content blocks: its text, then its tool calls."""
    blocks: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": str(call.get("id") or ""), "name": str(function.get("name") or ""),
                       "input": tool_input(function.get("arguments"))})
    return blocks


def to_message(body: dict[str, Any]) -> dict[str, Any]:
    """A successful job's stored body as an Anthropic message; `model` is the canonical slug."""
    choice = (body.get("choices") or [{}])[0]
    meta = body.get("ainfera") or {}
    out: dict[str, Any] = {
        "id": message_id(str(meta.get("job_id") or body.get("id", "").removeprefix("chatcmpl-"))),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content_blocks(choice.get("message") or {}),
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage(body.get("usage")),
    }
    if meta:
        out["ainfera"] = meta
    return out
