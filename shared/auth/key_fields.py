"""What a tenant's admin sets on an API key: a name, an expiry and the key's settings, checked
where they enter (admin API, command line) with the field named. How the gateway applies them
is `shared.auth.key_access`.

A key's limits are stored as given even when they are looser than the tenant's: they never
loosen anything, since every limit that applies holds at once (`shared.routing.limits.tightest`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.auth.key_access import AUTO
from shared.auth.key_settings import KeySettingsDocument
from shared.catalog.types import Catalog
from shared.chat.request import AUTO_MODELS
from shared.errors import InvalidRequest

MAX_NAME = 200
_MAX_TIMESTAMP = 64
FIELDS = ("name", "expires_at", "settings")


@dataclass(frozen=True, slots=True)
class KeyFields:
    """The fields a request gave (`given`), validated; the others keep their stored values."""

    given: frozenset[str]
    name: str | None = None
    expires_at: datetime | None = None
    settings: dict[str, Any] | None = None

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for `shared.db.tenants.update_api_key`: only what was given."""
        values = {"name": self.name, "expires_at": self.expires_at, "settings": self.settings or {}}
        return {name: values[name] for name in FIELDS if name in self.given}


def parse_key_fields(data: Any, catalog: Catalog, now: datetime) -> KeyFields:
    """Validate `{"name", "expires_at", "settings"}` (each optional; null clears it)."""
    if data is None:
        return KeyFields(given=frozenset())
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    for field in data:
        if field not in FIELDS:
            raise InvalidRequest(f"Unknown field '{field}'; a key has name, expires_at and settings.",
                                 code="unknown_parameter", param=str(field))
    return KeyFields(
        given=frozenset(data),
        name=parse_name(data.get("name")),
        expires_at=parse_expiry(data.get("expires_at"), now),
        settings=parse_settings(data.get("settings"), catalog),
    )


def parse_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("'name' must be a string.", code="invalid_value", param="name")
    name = value.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidRequest(f"'name' must be 1 to {MAX_NAME} characters (not counting surrounding spaces).",
                             code="invalid_value", param="name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidRequest("'name' must not contain control characters (such as NUL, tab or newline).",
                             code="invalid_value", param="name")
    return name


def parse_expiry(value: Any, now: datetime) -> datetime | None:
    """An RFC 3339 timestamp with its offset (`2027-01-31T00:00:00Z`), in the future."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP:
        raise InvalidRequest("'expires_at' must be an RFC 3339 timestamp such as \"2027-01-31T00:00:00Z\".",
                             code="invalid_value", param="expires_at")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as e:
        raise InvalidRequest(f"'expires_at' is not an RFC 3339 timestamp ({e}).", code="invalid_value",
                             param="expires_at") from e
    if when.tzinfo is None or ("T" not in value.upper() and " " not in value):
        raise InvalidRequest("'expires_at' needs a date, a time and an offset, such as \"2027-01-31T00:00:00Z\".",
                             code="invalid_value", param="expires_at")
    if when <= now:
        raise InvalidRequest(f"'expires_at' ({when.isoformat()}) is not in the future.", code="invalid_value",
                             param="expires_at")
    return when


def parse_settings(value: Any, catalog: Catalog) -> dict[str, Any]:
    """A `KeySettingsDocument` whose models are in the catalog; returns what to store."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("'settings' must be a JSON object.", code="invalid_value", param="settings")
    try:
        doc = KeySettingsDocument.model_validate(value)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        param = ".".join(["settings", *(str(p) for p in err["loc"])])
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", code="invalid_value", param=param) from e
    stored: dict[str, Any] = doc.model_dump(exclude_none=True)
    if doc.allowed_models is not None:
        for i, slug in enumerate(doc.allowed_models):
            if slug not in catalog.models and slug not in AUTO_MODELS:
                raise InvalidRequest(f"Unknown model '{slug}' in settings.allowed_models; use catalog slugs "
                                     f"(GET /v1/models) or '{AUTO}'.", code="unknown_model",
                                     param=f"settings.allowed_models.{i}")
        stored["allowed_models"] = sorted({AUTO if slug in AUTO_MODELS else slug for slug in doc.allowed_models})
    return stored
