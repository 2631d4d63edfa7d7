-- Idempotency keys, per tenant.

-- name: claim_key
-- Take the key: a new key, or one whose first request died holding it (same request only).
INSERT INTO idempotency_keys (tenant_id, key, request_hash, locked_until)
VALUES ($1, $2, $3, now() + $4::interval)
ON CONFLICT (tenant_id, key) DO UPDATE
   SET locked_until = EXCLUDED.locked_until, created_at = now()
 WHERE idempotency_keys.response_status IS NULL
   AND idempotency_keys.locked_until < now()
   AND idempotency_keys.request_hash = EXCLUDED.request_hash
RETURNING key;

-- name: get_key
SELECT request_hash, locked_until, response_status, response_headers, response_body,
       locked_until > now() AS in_progress
  FROM idempotency_keys WHERE tenant_id = $1 AND key = $2;

-- name: set_request_hash
UPDATE idempotency_keys SET request_hash = $3 WHERE tenant_id = $1 AND key = $2;

-- name: store_response
UPDATE idempotency_keys
   SET locked_until = NULL, response_status = $3, response_headers = $4, response_body = $5
 WHERE tenant_id = $1 AND key = $2;

-- name: release_key
DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND response_status IS NULL;

-- name: expire_keys
DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval;
