"""Anthropic's error types and the HTTP status each comes with (docs.anthropic.com/en/api/errors):
one table for the Messages ingress's answers, the adapter reading a streamed `error` event, and
the simulator speaking Anthropic's dialect."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

ERROR_TYPES: Mapping[int, str] = MappingProxyType({
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
})
STATUS_OF_TYPE: Mapping[str, int] = MappingProxyType({kind: status for status, kind in ERROR_TYPES.items()})


def error_type_of(status: int) -> str:
    """The type for a status; one without a type of its own is an invalid request (4xx) or an
    `api_error` (5xx)."""
    kind = ERROR_TYPES.get(status)
    if kind is not None:
        return kind
    return "invalid_request_error" if status < 500 else "api_error"
