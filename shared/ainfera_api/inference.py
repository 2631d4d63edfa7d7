"""`POST /v1/inference` as a chat-completions request, and a finished job as its flat answer.

The body is `{agent_id?, model, messages, ...extra}`; the extra keys (`max_tokens`, `tools`,
`routing_hint`...) are the chat request's own and are checked as any chat request is (an unknown
one such as `task_type` is dropped and listed in `x-ainfera-dropped-params`, as on chat). The answer
is the SDK's `InferenceResponse`: `inference_id` (the job id), `receipt_id`, `content`, `model_used`
(the canonical slug), `provider`, `finish_reason`, tokens and `cost_usd` as a decimal string.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.ainfera_api.errors import SpendPolicyExceeded, flat_body
from shared.errors import AinferaError, InvalidRequest
from shared.jobs import Outcome

# The agent's own caps (its API key's settings) are its spend policy: their refusal is a 403.
# Any other budget (the tenant's, a monthly one) is a budget refusal: a 402, as on chat.
AGENT_CAPS = frozenset({"key.max_cost_per_call_usd", "key.daily_budget_usd"})

_FINISH = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def chat_body(data: Any, key_id: UUID) -> dict[str, Any]:
    """The chat-completions body an inference body stands for. `agent_id`, when sent, must be the
    calling key's own (an agent is a named API key): a key never spends as another."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    body = dict(data)
    agent_id = body.pop("agent_id", None)
    if agent_id is not None and (not isinstance(agent_id, str) or agent_id != str(key_id)):
        raise InvalidRequest("'agent_id' must be the id of the agent whose API key sends the request "
                             f"({key_id}); send the call with that agent's key.", code="invalid_value",
                             param="agent_id")
    if body.get("stream") not in (None, False):
        raise InvalidRequest("POST /v1/inference answers with one JSON object; for streaming use "
                             "POST /v1/chat/completions with stream: true.", code="invalid_value", param="stream")
    body.pop("stream", None)
    return body


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones, in order
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def inference_object(outcome: Outcome) -> dict[str, Any]:
    """A successful chat completion as the flat inference answer (the `ainfera` block kept as is)."""
    body, meta = outcome.body, outcome.meta
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    native = choice.get("finish_reason")
    usage = body.get("usage") or {}
    out: dict[str, Any] = {
        "object": "inference",
        "inference_id": meta.get("job_id"),
        "receipt_id": meta.get("receipt_id"),
        "content": _text(message),
        "model_used": body.get("model"),
        "provider": meta.get("provider"),
        "finish_reason": native if native in _FINISH else "stop",
        "finish_reason_native": native,
        "input_tokens": int(usage.get("prompt_tokens") or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cost_usd": str(meta.get("cost_usd") if meta.get("cost_usd") is not None else "0"),
        "ainfera": meta,
    }
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return out


def failed_object(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """A job that did not succeed, as (status, flat error): the agent's own caps as 403
    `spend_policy_exceeded`, an unknown or inactive model as 422 `model_unavailable`, the rest as on chat."""
    error: dict[str, Any] = outcome.body.get("error") or {}
    meta = outcome.meta
    ids = {"inference_id": meta.get("job_id"), "receipt_id": meta.get("receipt_id")}
    refusal = meta.get("refusal") or {}
    message = str(error.get("message") or "The call failed.")
    if outcome.http_status == 402 and refusal.get("budget") in AGENT_CAPS:
        err: AinferaError = SpendPolicyExceeded(message, reason=str(refusal["reason"]), budget=refusal["budget"])
        return err.status, flat_body(err, **ids)
    body = {"error": error.get("code"), "code": error.get("code"), "message": message, "type": error.get("type"),
            "param": error.get("param"), **ids}
    if refusal:
        body |= {"reason": refusal.get("reason"), "budget": refusal.get("budget")}
    if error.get("code") in ("model_not_found", "model_inactive"):
        body |= {"error": "model_unavailable", "code": "model_unavailable", "model": meta.get("requested_model"),
                 "provider": meta.get("provider")}
        return 422, body
    return outcome.http_status, body
