"""Errors on Ainfera's own API: its flat shape, and the two refusals it names that ours do not.

The `ainfera` SDK (1.1.0) reads a top-level `message`, maps 402 and 403 by status, and raises
`ModelUnavailable` only when a 422's top-level `error` (or `code`) is `model_unavailable`, so an
error here is flat: `{"error": code, "code", "message", "type", "param", ...details}`, the OpenAI
envelope's fields one level up (see docs/decisions.md).
"""

from __future__ import annotations

from typing import Any

from shared.catalog.types import Catalog
from shared.errors import AinferaError


class ModelUnavailable(AinferaError):
    """A pinned model that does not exist or cannot take traffic, with the model and its provider named."""

    status = 422
    type = "invalid_request_error"
    default_code = "model_unavailable"

    def __init__(self, message: str, *, model: str, provider: str | None) -> None:
        super().__init__(message, param="model")
        self.model = model
        self.provider = provider


class SpendPolicyExceeded(AinferaError):
    """The agent's own drain-proof cap (per call or per day) refused the call; no provider was called."""

    status = 403
    type = "permission_error"
    default_code = "spend_policy_exceeded"

    def __init__(self, message: str, *, reason: str, budget: str | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.budget = budget


class NotSupported(AinferaError):
    """An Ainfera feature this self-hosted gateway does not have (wallets, signup, agent cards...)."""

    status = 501
    type = "server_error"
    default_code = "not_implemented"

    def __init__(self, feature: str, why: str) -> None:
        super().__init__(f"{feature} is not supported by this self-hosted gateway: {why}")
        self.feature = feature


def flat_body(err: AinferaError, **details: Any) -> dict[str, Any]:
    """`err` in Ainfera's flat error shape, with its own details (model, provider, reason, feature)."""
    body: dict[str, Any] = {"error": err.code, "code": err.code, "message": err.message, "type": err.type,
                            "param": err.param}
    if isinstance(err, ModelUnavailable):
        body |= {"model": err.model, "provider": err.provider}
    elif isinstance(err, SpendPolicyExceeded):
        body |= {"reason": err.reason, "budget": err.budget}
    elif isinstance(err, NotSupported):
        body["feature"] = err.feature
    return body | details


def model_unavailable(catalog: Catalog, slug: str, message: str) -> ModelUnavailable:
    """The 422 for a pinned slug our chat path refused as unknown or inactive, naming its provider if any."""
    model = catalog.models.get(slug)
    return ModelUnavailable(message, model=slug, provider=model.provider if model is not None else None)
