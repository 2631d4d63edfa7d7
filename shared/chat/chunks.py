"""The shapes a streamed answer takes on its way to the caller: OpenAI `chat.completion.chunk`
objects and the error event, built in one place for the worker (which relays chunks as they come)
and the gateway (which turns a stored answer into chunks when the live ones were lost).
"""

from __future__ import annotations

from typing import Any

import orjson


def completion_id(job_id: str) -> str:
    """The id a job's answer carries, streamed or not: `chatcmpl-` and the job id's own part."""
    return "chatcmpl-" + job_id.removeprefix("job_")


def chunk(job_id: str, created: int, model: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One chunk; every chunk of a stream has the same id, created and model (the canonical slug)."""
    return {"id": completion_id(job_id), "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, **extra}


def closing_chunks(body: dict[str, Any], finish: list[dict[str, Any]] | None, *, created: int,
                   include_usage: bool) -> list[dict[str, Any]]:
    """What follows the content once the job is committed: the finish chunk (`finish`: its choices,
    held back until now; None to rebuild them from `body`), then the usage chunk when the caller
    asked for one. The last of them carries the `ainfera` block (job, receipt, cost). `created` is
    the stream's, which every chunk repeats."""
    head = {"job_id": body["ainfera"]["job_id"], "created": created, "model": body["model"]}
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    if finish is None:
        finish = [{"index": c["index"], "delta": {}, "logprobs": None, "finish_reason": c.get("finish_reason")}
                  for c in body["choices"]]
    out = [chunk(choices=finish, **head, **extra)]
    if include_usage:
        out.append(chunk(choices=[], **head, usage=body["usage"]))
    out[-1]["ainfera"] = body["ainfera"]
    return out


def replay_chunks(body: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    """A whole stored answer as a stream: each choice's message in one delta, then the closing chunks."""
    head = {"job_id": body["ainfera"]["job_id"], "created": body["created"], "model": body["model"]}
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    deltas = [{"index": c["index"], "delta": {k: v for k, v in c["message"].items() if v is not None},
               "logprobs": c.get("logprobs"), "finish_reason": None} for c in body["choices"]]
    return [chunk(choices=deltas, **head, **extra),
            *closing_chunks(body, None, created=body["created"], include_usage=include_usage)]


def sse(data: dict[str, Any] | bytes) -> bytes:
    """One server-sent event as OpenAI frames it: `data: <json>` and a blank line."""
    return b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"


DONE = b"data: [DONE]\n\n"
