"""How an API key is shown to its tenant's admin (admin API, command line): its prefix and
metadata, never the key or its hash. Only the answer that creates a key adds the key itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.auth.key_access import key_status
from shared.db.tenants import ApiKeyRow


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def api_key_object(key: ApiKeyRow, now: datetime) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": str(key.id),
        "tenant_id": str(key.tenant_id),
        "prefix": key.key_prefix,
        "name": key.name,
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
        "revoked_at": _time(key.revoked_at),
        "settings": key.settings,
        "status": key_status(key.revoked_at, key.expires_at, now).value,
    }


def new_key_object(key: ApiKeyRow, api_key: str, now: datetime) -> dict[str, Any]:
    """The key's object with the key itself, shown this once (`key_id` as the first API had it)."""
    return {**api_key_object(key, now), "api_key": api_key, "key_id": str(key.id)}
