"""The bounded label values of our metrics: every label a metric carries comes from a fixed set or a
catalog that is bounded, and anything outside folds into `other`.

Never a prompt, a key, a tenant id or a job id in a label: this module is where a value becomes a
label, so it is the one place to check that.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

OTHER = "other"
# The most distinct values one catalog label (model, provider) may take in a process; past it new
# values fold into `other`. The seeded catalog has 130 models and 17 providers.
MAX_CATALOG_VALUES = 512


class TenantClass(StrEnum):
    """Who made a gateway request, as a class (never which tenant)."""

    ANONYMOUS = "anonymous"  # no key, or a key that did not authenticate
    TENANT = "tenant"  # a tenant's API key
    ADMIN = "admin"  # the admin key


class Folded:
    """A label whose values are known in advance (an enum, error codes): anything else is `other`."""

    __slots__ = ("_known",)

    def __init__(self, known: Iterable[str]) -> None:
        self._known = frozenset(known)

    def __call__(self, value: str | None) -> str:
        return value if value is not None and value in self._known else OTHER

    def __contains__(self, value: object) -> bool:
        return value in self._known


class CatalogLabel:
    """A label whose values come from the catalog (model slugs, provider names): bounded by the
    catalog, and at most `limit` distinct values per process whatever the catalog does."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = MAX_CATALOG_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return OTHER
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit or not _looks_like_catalog_name(value):
            return OTHER
        self._seen.add(value)
        return value


def _looks_like_catalog_name(value: str) -> bool:
    """Catalog slugs and provider names are short and printable (`llama-3.3-70b@groq`); anything
    else (a caller's free text reaching here by mistake) never becomes a label."""
    return len(value) <= 96 and value.isascii() and value.isprintable() and " " not in value


HTTP_METHODS = Folded(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))
UNMATCHED_ROUTE = "unmatched"  # a path no route serves (a 404 from the router)


def status_label(status: int) -> str:
    """An HTTP status as a label: its number (at most the few hundred HTTP defines)."""
    return str(status) if 100 <= status <= 599 else OTHER


def error_codes() -> frozenset[str]:
    """Every default error code of our error hierarchy (walked when asked, so every subclass defined
    by then counts) plus the codes given explicitly where errors are raised with one."""
    from shared.errors import AinferaError

    codes: set[str] = set()
    pending: list[type[AinferaError]] = [AinferaError]
    while pending:
        cls = pending.pop()
        codes.add(cls.default_code)
        pending.extend(cls.__subclasses__())
    return frozenset(codes | EXPLICIT_CODES)


# Codes raised with `code=` rather than as a class's default, so they stay labels rather than
# folding into `other`. A code missing here is still counted, as `other`.
EXPLICIT_CODES = frozenset({
    "batch_not_cancellable", "conflicting_policy", "decimal_above_max_value",
    "empty_file", "idempotency_request_in_progress", "invalid_api_key", "invalid_batch_line", "invalid_character",
    "invalid_json", "invalid_value", "line_too_long", "missing_required_parameter", "model_banned_by_policy",
    "model_inactive", "model_not_allowed_for_key", "model_not_found", "nesting_too_deep", "provider_banned_by_policy",
    "rate_limit_exceeded", "stream_interrupted", "too_many_lines", "unknown_model", "unknown_parameter",
    "unknown_provider", "unknown_url", "unreadable_request", "unsupported_parameter", "unsupported_value",
})
