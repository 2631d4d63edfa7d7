"""The one error hierarchy of the project.

Every error a caller can see is a subclass of `AinferaError`: it carries its HTTP
status, the OpenAI envelope `type`, a stable `code`, the offending `param` (if
any) and whether the operation may be retried. The gateway turns it into the
OpenAI error envelope in one handler; the worker turns retryable ones into
retries in one wrapper. Nothing else formats errors.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AinferaError(Exception):
    """Base class: a failure we can explain to the caller without leaking internals."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def envelope(self) -> dict[str, Any]:
        """The OpenAI error envelope for this error."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def headers(self) -> dict[str, str]:
        """HTTP headers the response carries with this error (`Retry-After`, say)."""
        return {}


# --- caller errors (4xx) -----------------------------------------------------------------


class InvalidRequest(AinferaError):
    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class NoEligibleModel(AinferaError):
    """The router's filters removed every candidate; the message names the step."""

    status = 400
    type = "invalid_request_error"
    default_code = "no_eligible_model"


class AuthenticationFailed(AinferaError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class BudgetExceeded(AinferaError):
    """A budget that applies (the tenant's or the key's: per call, daily, monthly) has no room for
    this call's worst-case cost. No provider was called. OpenAI answers an exhausted quota with a
    429 `insufficient_quota`; ours is a spending limit the caller's owner set, so 402 as in HTTP's
    own meaning, with the budget and what is left named."""

    status = 402
    type = "insufficient_quota"
    default_code = "budget_exceeded"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 reason: str | None = None, budget: str | None = None) -> None:
        super().__init__(message, code=code, param=param)
        self.reason = reason  # `per_call_cap_exceeded`, `daily_cap_exceeded` or `monthly_cap_exceeded`
        self.budget = budget  # the budget that refused, e.g. `key.daily_budget_usd`


class PermissionDenied(AinferaError):
    status = 403
    type = "permission_error"
    default_code = "permission_denied"


class NotFound(AinferaError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class ModelInactive(NotFound):
    """The model exists in the catalog but is switched off (the message says why)."""

    default_code = "model_inactive"


class Conflict(AinferaError):
    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


class IdempotencyKeyReused(AinferaError):
    """The same Idempotency-Key came with a different request."""

    status = 422
    type = "invalid_request_error"
    default_code = "idempotency_key_reused"


class PayloadTooLarge(AinferaError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class StorageQuotaExceeded(AinferaError):
    """The upload would take the tenant's stored files over its quota. 413, not 429: waiting frees
    nothing, and SDKs retry 429s (a whole upload again); they do not retry a 413."""

    status = 413
    type = "invalid_request_error"
    default_code = "storage_quota_exceeded"


class RateLimited(AinferaError):
    """A tenant's or a key's requests or tokens per minute are used up (`shared/rate_limits.py`).
    OpenAI's envelope names the unit in `type` ("requests" or "tokens"); the response carries
    `Retry-After` and the `x-ratelimit-*` headers."""

    status = 429
    type = "requests"
    default_code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, unit: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.unit = unit
        self._headers = headers

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.unit, "code": self.code, "param": self.param}}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class UnsupportedMediaType(AinferaError):
    status = 415
    type = "invalid_request_error"
    default_code = "unsupported_media_type"


class ClientDisconnected(AinferaError):
    """The caller closed a streamed request before its end: the upstream call was stopped. 499 is
    nginx's "client closed request"; nobody reads it, but the stored job and receipt say it."""

    status = 499
    type = "invalid_request_error"
    default_code = "client_disconnected"


# --- upstream provider errors (the caller sees 502/504) ----------------------------------


class UpstreamError(AinferaError):
    """The provider failed. Retryable subclasses are retried by the transport."""

    status = 502
    type = "upstream_error"
    default_code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        upstream_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s
        # How many requests were sent before giving up; the transport fills it in.
        self.attempts = 0


class UpstreamServerError(UpstreamError):
    default_code = "upstream_server_error"
    retryable = True


class UpstreamRateLimited(UpstreamError):
    default_code = "upstream_rate_limited"
    retryable = True


class UpstreamUnreachable(UpstreamError):
    """Could not connect at all (DNS, refused, TLS). Safe to retry: nothing was sent."""

    default_code = "upstream_unreachable"
    retryable = True


class UpstreamConnectionLost(UpstreamError):
    """The connection broke after the whole request was sent and before an answer came. Not
    retried: the provider may have done (and billed) the work; only another provider is tried."""

    default_code = "upstream_connection_lost"


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


class UpstreamMalformed(UpstreamError):
    default_code = "upstream_malformed_response"


class UpstreamResponseTooLarge(UpstreamMalformed):
    """The answer passed `upstream_max_response_bytes`; it was dropped unread past that."""

    default_code = "upstream_response_too_large"


class UpstreamStreamBroken(UpstreamError):
    """The provider failed after part of a streamed answer was relayed: no retry and no fallback
    (the caller has seen that part); the stream ends with an error event, and the receipt bills
    what was generated."""

    default_code = "upstream_stream_interrupted"


class UpstreamAuthFailed(UpstreamError):
    default_code = "upstream_auth_failed"


class UpstreamModelNotFound(UpstreamError):
    default_code = "upstream_model_not_found"


class UpstreamRejected(UpstreamError):
    """The provider refused the request itself (4xx other than auth/404/429)."""

    status = 400
    type = "invalid_request_error"
    default_code = "upstream_rejected_request"


class UnsupportedByModel(UpstreamRejected):
    """The model cannot take a field or content part of this request: our translation for its
    provider has no way to express it, or the provider answered `unsupported_parameter` /
    `unsupported_value`. Another model may take it, so `ainfera-auto` tries the next candidate."""

    default_code = "unsupported_parameter"


class UpstreamMisconfigured(UpstreamError):
    """The catalog row cannot produce a valid upstream URL. Fix the row; retrying will not help."""

    default_code = "upstream_misconfigured"


class ProviderNotConfigured(UpstreamError):
    """No credentials for this provider in this deployment."""

    status = 503
    default_code = "provider_not_configured"


# --- our own side (5xx) ------------------------------------------------------------------


class ServiceUnavailable(AinferaError):
    status = 503
    type = "server_error"
    default_code = "service_unavailable"
    retryable = True


class GatewayTimeout(AinferaError):
    status = 504
    type = "server_error"
    default_code = "timeout"


class InternalError(AinferaError):
    """Only used at process boundaries for failures we did not anticipate."""
