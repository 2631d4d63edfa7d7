-- Tenants and their API keys (only hashes of keys are stored).

-- name: create_tenant
INSERT INTO tenants (name, spend_policy) VALUES ($1, $2) RETURNING id, name, spend_policy, created_at;

-- name: get_tenant
SELECT id, name, spend_policy, created_at FROM tenants WHERE id = $1;

-- name: set_spend_policy
UPDATE tenants SET spend_policy = $2 WHERE id = $1 RETURNING id;

-- name: create_api_key
INSERT INTO api_keys (tenant_id, key_hash, key_prefix, name, expires_at, settings)
VALUES ($1, $2, $3, $4, $5, coalesce($6, '{}'::jsonb))
RETURNING id, tenant_id, key_prefix, name, created_at, expires_at, revoked_at, settings;

-- name: list_api_keys
-- Newest first; `after` is the id of the last key of the previous page. Never the hash.
SELECT k.id, k.tenant_id, k.key_prefix, k.name, k.created_at, k.expires_at, k.revoked_at, k.settings
  FROM api_keys k
 WHERE k.tenant_id = $1
   AND ($2::uuid IS NULL OR (k.created_at, k.id) < (SELECT a.created_at, a.id FROM api_keys a
                                                     WHERE a.id = $2 AND a.tenant_id = $1))
 ORDER BY k.created_at DESC, k.id DESC
 LIMIT $3;

-- name: get_api_key
SELECT id, tenant_id, key_prefix, name, created_at, expires_at, revoked_at, settings
  FROM api_keys WHERE id = $1 AND tenant_id = $2;

-- name: update_api_key
-- $3..$5 are applied only where the matching flag ($6 name, $7 expires_at, $8 settings) is set.
UPDATE api_keys
   SET name = CASE WHEN $6 THEN $3 ELSE name END,
       expires_at = CASE WHEN $7 THEN $4 ELSE expires_at END,
       -- The admin's settings replace the admin's; the key's own agent policy (set through
       -- /v1/agents/{id}/spend-policy) is kept: each side changes only its own caps.
       settings = CASE WHEN NOT $8 THEN settings
                       WHEN settings ? 'agent_policy'
                       THEN $5::jsonb || jsonb_build_object('agent_policy', settings -> 'agent_policy')
                       ELSE $5 END
 WHERE id = $1 AND tenant_id = $2
RETURNING id, tenant_id, key_prefix, name, created_at, expires_at, revoked_at, settings;

-- name: set_agent_policy
-- A key's own caps (its agent's spend policy), beside the admin's settings; NULL removes them.
UPDATE api_keys
   SET settings = CASE WHEN $3::jsonb IS NULL THEN settings - 'agent_policy'
                       ELSE jsonb_set(settings, '{agent_policy}', $3::jsonb) END
 WHERE id = $1 AND tenant_id = $2
RETURNING id, tenant_id, key_prefix, name, created_at, expires_at, revoked_at, settings;

-- name: revoke_api_key
-- Idempotent: a revoked key keeps the time it was first revoked.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
 WHERE id = $1 AND tenant_id = $2
RETURNING id, tenant_id, key_prefix, name, created_at, expires_at, revoked_at, settings;

-- name: tenant_for_key_hash
SELECT k.id AS key_id, t.id AS tenant_id, t.name, t.spend_policy, k.name AS key_name, k.expires_at, k.settings
  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
 WHERE k.key_hash = $1 AND k.revoked_at IS NULL;

-- name: tenant_by_name
SELECT id, name, spend_policy, created_at FROM tenants WHERE name = $1 ORDER BY created_at LIMIT 1;
