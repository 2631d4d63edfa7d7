"""A tenant's spend policy: what it is, how it is validated, how the router sees it.

The policy is stored as jsonb on the tenant and validated when it is set: unknown
fields, unknown provider names and unknown slugs are refused with the field named,
so a typo can never silently fail to ban something. Banned providers and slugs are
never selected, not even as a fallback; an explicit request for one is a 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError

from shared.catalog.types import Catalog, Model
from shared.errors import InvalidRequest, PermissionDenied
from shared.routing.limits import Limits, LimitsDocument

MAX_ENTRIES = 500


class SpendPolicyDocument(LimitsDocument):
    """The JSON a tenant's policy is set with (admin API, CLI): bans and preferences, and the
    tenant's limits (per-call cap, daily and monthly budgets, rate limits: `limits.py`)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    banned_providers: Annotated[list[str], Field(max_length=MAX_ENTRIES)] = []
    preferred_providers: Annotated[list[str], Field(max_length=MAX_ENTRIES)] = []
    banned_slugs: Annotated[list[str], Field(max_length=MAX_ENTRIES)] = []
    # Refuse unknown request fields with 400 (OpenAI's own behaviour) instead of accepting and
    # reporting them in x-ainfera-dropped-params.
    strict_params: bool = False


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """The router's view of a policy (empty = no preferences, v1.0 behaviour)."""

    banned_providers: frozenset[str] = frozenset()
    preferred_providers: frozenset[str] = frozenset()
    banned_slugs: frozenset[str] = frozenset()
    max_cost_per_call_usd: float | None = None
    strict_params: bool = False
    limits: Limits = dataclass_field(default_factory=Limits)  # per-call cap (again), budgets, rate limits

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> TenantPolicy:
        """From stored jsonb, which was validated when it was set."""
        data = data or {}
        limits = Limits.from_json(data)
        return TenantPolicy(
            banned_providers=frozenset(data.get("banned_providers") or ()),
            preferred_providers=frozenset(data.get("preferred_providers") or ()),
            banned_slugs=frozenset(data.get("banned_slugs") or ()),
            max_cost_per_call_usd=limits.max_cost_per_call_usd,
            strict_params=data.get("strict_params") is True,
            limits=limits,
        )

    def allows(self, model: Model) -> bool:
        return model.provider not in self.banned_providers and model.slug not in self.banned_slugs

    def check_pinned(self, model: Model) -> None:
        """Refuse an explicit request for a banned model (403, not a silent substitute)."""
        if model.slug in self.banned_slugs:
            raise PermissionDenied(
                f"The model '{model.slug}' is banned by this tenant's spend policy (banned_slugs).",
                code="model_banned_by_policy",
                param="model",
            )
        if model.provider in self.banned_providers:
            raise PermissionDenied(
                f"The provider '{model.provider}' of '{model.slug}' is banned by this tenant's spend policy "
                "(banned_providers).",
                code="provider_banned_by_policy",
                param="model",
            )


def validate_policy(data: Any, catalog: Catalog) -> dict[str, Any]:
    """Check a policy document against the schema and the catalog; returns what to store."""
    if not isinstance(data, dict):
        raise InvalidRequest("The spend policy must be a JSON object.", param="spend_policy")
    try:
        doc = SpendPolicyDocument.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        param = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", code="invalid_value", param=param) from e
    for field in ("banned_providers", "preferred_providers"):
        for i, name in enumerate(getattr(doc, field)):
            if name not in catalog.providers:
                raise InvalidRequest(
                    f"Unknown provider '{name}' in {field}; known providers: {', '.join(sorted(catalog.providers))}.",
                    code="unknown_provider",
                    param=f"{field}.{i}",
                )
    for i, slug in enumerate(doc.banned_slugs):
        if slug not in catalog.models:
            raise InvalidRequest(f"Unknown model slug '{slug}' in banned_slugs.", code="unknown_model",
                                 param=f"banned_slugs.{i}")
    both = set(doc.banned_providers) & set(doc.preferred_providers)
    if both:
        raise InvalidRequest(
            f"Providers cannot be both banned and preferred: {', '.join(sorted(both))}.",
            code="conflicting_policy",
            param="preferred_providers",
        )
    stored: dict[str, Any] = doc.model_dump(exclude_defaults=True)
    for field in ("banned_providers", "preferred_providers", "banned_slugs"):
        if field in stored:
            stored[field] = sorted(set(stored[field]))
    return stored
