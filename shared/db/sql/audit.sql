-- The audit chain: append through audit_append() (migration 0001), read in seq order.

-- name: append_event
SELECT seq, event_hash FROM audit_append($1, $2, $3, $4, $5, $6);

-- name: list_events
SELECT seq, event_type, job_id, payload, previous_hash, event_hash, created_at
  FROM audit_events
 WHERE tenant_id = $1 AND seq > $2
 ORDER BY seq
 LIMIT $3;

-- name: chain_head
SELECT seq, event_hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1;
