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


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """A key as its tenant's admin sees it: never the key, never its hash."""

    id: UUID
    tenant_id: UUID
    key_prefix: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    settings: dict[str, Any]


def _key_row(r: Any) -> ApiKeyRow:
    return ApiKeyRow(r["id"], r["tenant_id"], r["key_prefix"], r["name"], r["created_at"], r["expires_at"],
                     r["revoked_at"], r["settings"])


async def insert_api_key(conn: Connection, tenant_id: UUID, key_hash: bytes, key_prefix: str, *,
                         name: str | None = None, expires_at: datetime | None = None,
                         settings: dict[str, Any] | None = None) -> ApiKeyRow:
    r = await conn.fetchrow(q("tenants", "create_api_key"), tenant_id, key_hash, key_prefix, name, expires_at,
                            settings)
    assert r is not None  # INSERT ... RETURNING
    return _key_row(r)


async def create_api_key(conn: Connection, tenant_id: UUID, key_hash: bytes, key_prefix: str) -> UUID:
    return (await insert_api_key(conn, tenant_id, key_hash, key_prefix)).id


async def list_api_keys(conn: Connection, tenant_id: UUID, after: UUID | None, limit: int) -> list[ApiKeyRow]:
    return [_key_row(r) for r in await conn.fetch(q("tenants", "list_api_keys"), tenant_id, after, limit)]


async def get_api_key(conn: Connection, tenant_id: UUID, key_id: UUID) -> ApiKeyRow | None:
    r = await conn.fetchrow(q("tenants", "get_api_key"), key_id, tenant_id)
    return _key_row(r) if r else None


_UNSET: Any = object()


async def update_api_key(conn: Connection, tenant_id: UUID, key_id: UUID, *, name: Any = _UNSET,
                         expires_at: Any = _UNSET, settings: Any = _UNSET) -> ApiKeyRow | None:
    """Change the fields given (None clears name or expiry); None when the tenant has no such key."""
    r = await conn.fetchrow(
        q("tenants", "update_api_key"), key_id, tenant_id,
        None if name is _UNSET else name, None if expires_at is _UNSET else expires_at,
        None if settings is _UNSET else settings,
        name is not _UNSET, expires_at is not _UNSET, settings is not _UNSET,
    )
    return _key_row(r) if r else None


async def set_agent_policy(conn: Connection, tenant_id: UUID, key_id: UUID,
                           policy: dict[str, Any] | None) -> ApiKeyRow | None:
    """Set (None: remove) the key's own caps, `settings.agent_policy`, leaving the admin's settings."""
    r = await conn.fetchrow(q("tenants", "set_agent_policy"), key_id, tenant_id, policy)
    return _key_row(r) if r else None


async def revoke_api_key(conn: Connection, tenant_id: UUID, key_id: UUID) -> ApiKeyRow | None:
    r = await conn.fetchrow(q("tenants", "revoke_api_key"), key_id, tenant_id)
    return _key_row(r) if r else None


async def owner_of_key_hash(conn: Connection, key_hash: bytes) -> KeyOwner | None:
    r = await conn.fetchrow(q("tenants", "tenant_for_key_hash"), key_hash)
    if r is None:
        return None
    return KeyOwner(r["key_id"], TenantRow(r["tenant_id"], r["name"], r["spend_policy"]), key_name=r["key_name"],
                    expires_at=r["expires_at"], settings=KeySettings.from_json(r["settings"]))


async def tenant_by_name(conn: Connection, name: str) -> TenantRow | None:
    r = await conn.fetchrow(q("tenants", "tenant_by_name"), name)
    return TenantRow(r["id"], r["name"], r["spend_policy"]) if r else None
