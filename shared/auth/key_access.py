"""What a key's own fields allow, checked on every request: its expiry (the cached `KeyOwner` is
checked against the clock each time, not only when it was loaded) and its model allowlist.

`allowed_models` names what a request may put in `model`: `ainfera-auto` (either alias) lets
the key use the router, which then chooses among every model the tenant may use.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.auth.key_settings import KeySettings
from shared.chat.request import AUTO_MODELS
from shared.errors import AinferaError, AuthenticationFailed, PermissionDenied

AUTO = "ainfera-auto"
_SHOWN_MODELS = 20


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def key_status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> KeyStatus:
    if revoked_at is not None:
        return KeyStatus.REVOKED
    if expires_at is not None and expires_at <= now:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE


def check_not_expired(expires_at: datetime | None, now: datetime) -> None:
    """A 401 for a key past its expiry; the message says no more than that."""
    if expires_at is not None and expires_at <= now:
        raise AuthenticationFailed("The API key provided has expired.")


def check_model_allowed(settings: KeySettings, model: str) -> None:
    """A 403 when the key's `allowed_models` does not name `model` (no list: every model)."""
    allowed = settings.allowed_models
    if allowed is None:
        return
    if (AUTO if model in AUTO_MODELS else model) in allowed:
        return
    shown = sorted(allowed)
    listed = ", ".join(shown[:_SHOWN_MODELS]) + (f" and {len(shown) - _SHOWN_MODELS} more"
                                                 if len(shown) > _SHOWN_MODELS else "")
    raise PermissionDenied(f"This API key may not use the model '{model}'; its allowed_models are: {listed}.",
                           code="model_not_allowed_for_key", param="model")


def stored_work_refusal(*, key_revoked: bool, settings: KeySettings, model: str | None) -> AinferaError | None:
    """Why work stored before it runs (an async job, a batch line) may not run now, or None. Such
    work answers to its key as the key is when it runs, not when it was accepted: a revoked key's
    work stops (revoking a leaked key must stop what was queued with it), and a model its
    `allowed_models` no longer names is refused. An expired key's accepted work still runs: expiry
    is planned, and a batch accepted before it was accepted for its whole completion window."""
    if key_revoked:
        return AuthenticationFailed("The API key that submitted this request has been revoked.",
                                    code="api_key_revoked")
    if model is not None:
        try:
            check_model_allowed(settings, model)
        except PermissionDenied as e:
            return e
    return None
