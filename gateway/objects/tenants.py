"""Tenant shapes: the caller's own (`GET /v1/me`) and the admin API's (a tenant, its policy, a new key).

A new API key appears only in `new_tenant_object` and `shared.auth.key_view.new_key_object`: the
answer to the request that created it (only its hash is stored).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db.tenants import TenantRow


def tenant_object(tenant: TenantRow) -> dict[str, Any]:
    return {"object": "tenant", "tenant_id": str(tenant.id), "name": tenant.name}


def admin_tenant_object(tenant: TenantRow) -> dict[str, Any]:
    return {"tenant_id": str(tenant.id), "name": tenant.name, "spend_policy": tenant.spend_policy}


def spend_policy_object(tenant_id: UUID, policy: dict[str, Any]) -> dict[str, Any]:
    return {"tenant_id": str(tenant_id), "spend_policy": policy}


def new_tenant_object(tenant: TenantRow, api_key: str, key_id: UUID) -> dict[str, Any]:
    return {"tenant_id": str(tenant.id), "name": tenant.name, "api_key": api_key, "key_id": str(key_id)}
