-- Idempotency keys, per tenant.

-- name: claim_key
-- Take the key: a new key, or one whose first request died holding it before it created any
-- work (same request only). A key bound to work is resolved through that work, never taken over.
INSERT INTO idempotency_keys (tenant_id, key, request_hash, locked_until)
VALUES ($1, $2, $3, now() + $4::interval)
ON CONFLICT (tenant_id, key) DO UPDATE
   SET locked_until = EXCLUDED.locked_until, created_at = now()
 WHERE idempotency_keys.response_status IS NULL
   AND idempotency_keys.work_id IS NULL
   AND idempotency_keys.locked_until < now()
   AND idempotency_keys.request_hash = EXCLUDED.request_hash
RETURNING key;

-- name: get_key
SELECT request_hash, locked_until, response_status, response_headers, response_body, work_id,
       locked_until > now() AS in_progress
  FROM idempotency_keys WHERE tenant_id = $1 AND key = $2;

-- name: bind_key
-- The key's request created this work: from now on a repeat resolves through it.
UPDATE idempotency_keys SET work_id = $3 WHERE tenant_id = $1 AND key = $2 AND response_status IS NULL;

-- name: unbind_key
-- The work was never handed to anyone (its enqueue failed): the key is free to run again.
UPDATE idempotency_keys SET work_id = NULL WHERE tenant_id = $1 AND key = $2 AND work_id = $3;

-- name: set_request_hash
UPDATE idempotency_keys SET request_hash = $3 WHERE tenant_id = $1 AND key = $2;

-- name: store_response
UPDATE idempotency_keys
   SET locked_until = NULL, response_status = $3, response_headers = $4, response_body = $5
 WHERE tenant_id = $1 AND key = $2;

-- name: release_key
-- Only a key that created no work; a bound key stays bound (its work may be running).
DELETE FROM idempotency_keys
 WHERE tenant_id = $1 AND key = $2 AND response_status IS NULL AND work_id IS NULL;

-- name: release_lost_key
-- The bound work left no trace (never finished, not queued, not running): free the key.
DELETE FROM idempotency_keys
 WHERE tenant_id = $1 AND key = $2 AND response_status IS NULL AND work_id = $3;

-- name: expire_keys
DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval;
