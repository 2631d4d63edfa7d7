"""Our errors in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, for the
Messages routes only (chat completions keep OpenAI's envelope).

The Anthropic error type follows the HTTP status, as Anthropic's own API does. Statuses are
kept, except 503 (our queue or a backing service briefly unavailable), which is Anthropic's
529 `overloaded_error`, the status its clients know to wait out.
"""

from __future__ import annotations

from typing import Any

from shared.anthropic_errors import error_type_of

OVERLOADED = 529


def anthropic_status(status: int) -> int:
    return OVERLOADED if status == 503 else status


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status: 4xx without a type of their own are invalid
    requests (409, 415, 422), 5xx without one are `api_error` (502 upstream failures)."""
    return error_type_of(anthropic_status(status))


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def from_envelope(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A stored OpenAI error envelope (a job's outcome) as (status, Anthropic error body)."""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return anthropic_status(status), error_body(status, str(message or "The request failed."))
