-- Tenants and their API keys (only hashes of keys are stored).

-- name: create_tenant
INSERT INTO tenants (name, spend_policy) VALUES ($1, $2) RETURNING id, name, spend_policy, created_at;

-- name: get_tenant
SELECT id, name, spend_policy, created_at FROM tenants WHERE id = $1;

-- name: set_spend_policy
UPDATE tenants SET spend_policy = $2 WHERE id = $1 RETURNING id;

-- name: create_api_key
INSERT INTO api_keys (tenant_id, key_hash, key_prefix) VALUES ($1, $2, $3) RETURNING id, created_at;

-- name: tenant_for_key_hash
SELECT k.id AS key_id, t.id AS tenant_id, t.name, t.spend_policy, k.name AS key_name, k.expires_at, k.settings
  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
 WHERE k.key_hash = $1 AND k.revoked_at IS NULL;

-- name: tenant_by_name
SELECT id, name, spend_policy, created_at FROM tenants WHERE name = $1 ORDER BY created_at LIMIT 1;
