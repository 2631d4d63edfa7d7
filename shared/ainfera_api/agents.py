"""An agent is a named API key of a tenant (docs/decisions.md): its object, and its spend policy,
which is the key's per-call cap and daily budget with Ainfera's validation ranges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.auth.key_access import key_status
from shared.db.tenants import ApiKeyRow
from shared.errors import InvalidRequest

# Ainfera's own ranges for the drain-proof caps, in USD (its manifest schema).
RANGES = {"per_call_cap_usd": (Decimal("0.001"), Decimal("100")),
          "daily_cap_usd": (Decimal("0.01"), Decimal("10000"))}
# Each cap is stored in the key's settings under `agent_policy`, as the limit of the same meaning
# (`shared/routing/limits.py`), apart from what the tenant's admin set: an agent's own caps only
# tighten the admin's (`KeySettings.from_json`), so a key can never lift a cap it was given.
STORED_AS = {"per_call_cap_usd": "max_cost_per_call_usd", "daily_cap_usd": "daily_budget_usd"}
POLICY_KEY = "agent_policy"
_MAX_TEXT = 40  # a decimal amount is never longer


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """The caps a request sets: a Decimal, or None to clear it. Caps not named are left as they are."""

    caps: dict[str, Decimal | None]

    def apply(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The key's new agent policy (None: no cap left) from its settings and these changes."""
        current = settings.get(POLICY_KEY)
        out = dict(current) if isinstance(current, dict) else {}
        for name, value in self.caps.items():
            if value is None:
                out.pop(STORED_AS[name], None)
            else:
                out[STORED_AS[name]] = float(value)
        return out or None


def _amount(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"'{name}' must be a USD amount, a number or a decimal string such as \"1.50\".",
                             code="invalid_value", param=name)
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        raise InvalidRequest(f"'{name}' is not a USD amount.", code="invalid_value", param=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest(f"'{name}' must be a finite amount.", code="invalid_value", param=name)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise InvalidRequest(f"'{name}' is not a USD amount.", code="invalid_value", param=name) from e
    low, high = RANGES[name]
    if not amount.is_finite() or not low <= amount <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high} USD.", code="invalid_value", param=name)
    return amount


def parse_policy(data: Any, *, replace: bool) -> PolicyChange:
    """Validate `{per_call_cap_usd, daily_cap_usd}` (each optional; null clears it). `replace` (POST):
    a cap not named is cleared; otherwise (PATCH) it is kept."""
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object with per_call_cap_usd and/or daily_cap_usd.",
                             code="invalid_json")
    for field in data:
        if field not in RANGES:
            raise InvalidRequest(f"Unknown field '{str(field)[:64]}'; a spend policy has per_call_cap_usd and "
                                 "daily_cap_usd.", code="unknown_parameter", param=str(field)[:64])
    if not data and not replace:
        raise InvalidRequest("Name at least one of per_call_cap_usd and daily_cap_usd.", code="invalid_value")
    names = RANGES if replace else data
    return PolicyChange({name: _amount(name, data.get(name)) for name in names})


def _money(value: Any) -> str | None:
    return None if value is None else format(Decimal(repr(float(value))).normalize(), "f")


def spend_policy_object(settings: dict[str, Any]) -> dict[str, Any]:
    """The agent's own caps; `drain_proof_status` is `protected` when the key has any cap at all
    (its own, or one its tenant's admin set)."""
    own = settings.get(POLICY_KEY)
    own = own if isinstance(own, dict) else {}
    policy = {name: _money(own.get(stored)) for name, stored in STORED_AS.items()}
    admin = any(settings.get(stored) is not None for stored in STORED_AS.values())
    protected = admin or any(v is not None for v in policy.values())
    return {"spend_policy": policy, "drain_proof_status": "protected" if protected else "unprotected"}


def agent_object(key: ApiKeyRow, now: datetime) -> dict[str, Any]:
    """The SDK's Agent: `id`, `tenant_id`, `name`, `status`, `created_at`, and the spend policy."""
    return {
        "object": "agent",
        "id": str(key.id),
        "tenant_id": str(key.tenant_id),
        "name": key.name or key.key_prefix,
        "description": None,
        "status": key_status(key.revoked_at, key.expires_at, now).value,
        "created_at": key.created_at.isoformat(),
        "public_key_ed25519": None,
        **spend_policy_object(key.settings),
    }
