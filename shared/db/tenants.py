"""Tenants, their spend policies, and API keys by hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.auth.key_settings import KeySettings
from shared.db.queries import q
from shared.db.types import Connection


@dataclass(frozen=True, slots=True)
class TenantRow:
    id: UUID
    name: str
    spend_policy: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: UUID
    tenant: TenantRow
    key_name: str | None = None
    expires_at: datetime | None = None
    settings: KeySettings = field(default_factory=KeySettings)


async def create_tenant(conn: Connection, name: str, spend_policy: dict[str, Any] | None = None) -> TenantRow:
    r = await conn.fetchrow(q("tenants", "create_tenant"), name, spend_policy or {})
    assert r is not None  # INSERT ... RETURNING
    return TenantRow(r["id"], r["name"], r["spend_policy"])


async def get_tenant(conn: Connection, tenant_id: UUID) -> TenantRow | None:
    r = await conn.fetchrow(q("tenants", "get_tenant"), tenant_id)
    return TenantRow(r["id"], r["name"], r["spend_policy"]) if r else None


async def set_spend_policy(conn: Connection, tenant_id: UUID, policy: dict[str, Any]) -> bool:
    return await conn.fetchval(q("tenants", "set_spend_policy"), tenant_id, policy) is not None


async def create_api_key(conn: Connection, tenant_id: UUID, key_hash: bytes, key_prefix: str) -> UUID:
    r = await conn.fetchrow(q("tenants", "create_api_key"), tenant_id, key_hash, key_prefix)
    assert r is not None  # INSERT ... RETURNING
    key_id: UUID = r["id"]
    return key_id


async def owner_of_key_hash(conn: Connection, key_hash: bytes) -> KeyOwner | None:
    r = await conn.fetchrow(q("tenants", "tenant_for_key_hash"), key_hash)
    if r is None:
        return None
    return KeyOwner(r["key_id"], TenantRow(r["tenant_id"], r["name"], r["spend_policy"]), key_name=r["key_name"],
                    expires_at=r["expires_at"], settings=KeySettings.from_json(r["settings"]))


async def tenant_by_name(conn: Connection, name: str) -> TenantRow | None:
    r = await conn.fetchrow(q("tenants", "tenant_by_name"), name)
    return TenantRow(r["id"], r["name"], r["spend_policy"]) if r else None
