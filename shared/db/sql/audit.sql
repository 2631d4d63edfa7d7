-- The audit chain: append under a per-tenant lock, read in seq order.

-- name: lock_head
SELECT head_seq, head_hash FROM audit_lock_head($1);

-- name: insert_event
INSERT INTO audit_events (tenant_id, seq, event_type, job_id, payload, previous_hash, event_hash, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: list_events
SELECT seq, event_type, job_id, payload, previous_hash, event_hash, created_at
  FROM audit_events
 WHERE tenant_id = $1 AND seq > $2
 ORDER BY seq
 LIMIT $3;

-- name: count_events
SELECT count(*) FROM audit_events WHERE tenant_id = $1;

-- name: event_for_job
SELECT seq, event_type, job_id, payload, previous_hash, event_hash, created_at
  FROM audit_events WHERE job_id = $1;
