-- Jobs and their receipts. A job is finished exactly once; its receipt is unique.

-- name: finish_dispatch
-- Job outcome, receipt and audit event in one round trip (see finish_dispatch() in 0001).
SELECT finish_dispatch($1, $2, $3, $4, $5);

-- name: job_outcome
SELECT id, tenant_id, kind, status, requested_model, response, http_status, receipt_id, created_at,
       finished_at
  FROM jobs WHERE id = $1;

-- name: get_receipt
SELECT id, job_id, tenant_id, status, requested_model, model_slug, provider, upstream_model, input_tokens,
       output_tokens, estimated_cost_usd, cost_usd, latency_ms, upstream_latency_ms, attempts, error_code,
       routing, created_at, signature, signing_kid, reasoning_effort, streamed, usage_estimated,
       cached_input_tokens, cache_write_tokens, reasoning_tokens
  FROM receipts WHERE id = $1 AND tenant_id = $2;

-- name: create_stored_job
-- Work acknowledged before it runs (an async call): its request is kept until it is done.
INSERT INTO jobs (id, tenant_id, kind, status, requested_model, request, created_at, key_id)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7);

-- name: claim_stored_job
-- A worker starts a stored job and takes its lease (the attempt number); nothing is returned
-- when it finished, or was cancelled or expired. Taking a running job over is how a job whose
-- worker died runs again; the old worker's lease is then stale (see finish_dispatch).
UPDATE jobs SET status = 'running', started_at = coalesce(started_at, now()), attempt = attempt + 1
 WHERE id = $1 AND status IN ('queued', 'running')
RETURNING tenant_id, kind, request, created_at, batch_id, attempt, key_id,
          (SELECT settings FROM api_keys WHERE api_keys.id = jobs.key_id) AS key_settings,
          (SELECT revoked_at IS NOT NULL FROM api_keys WHERE api_keys.id = jobs.key_id) AS key_revoked;

-- name: register_attempt
-- A synchronous job delivered again (its worker died or stalled) takes the lease for this attempt:
-- the row appears as `running`, so the earlier attempt can no longer commit a failure.
INSERT INTO jobs (id, tenant_id, kind, status, requested_model, created_at, started_at, attempt)
VALUES ($1, $2, $3, 'running', $4, $5, now(), $6)
ON CONFLICT (id) DO UPDATE SET attempt = greatest(jobs.attempt, EXCLUDED.attempt)
 WHERE jobs.status IN ('queued', 'running')
RETURNING attempt;

-- name: list_receipts
-- A tenant's receipts, newest first; `after` is the last id of the previous page.
SELECT id, job_id, tenant_id, status, requested_model, model_slug, provider, upstream_model, input_tokens,
       output_tokens, estimated_cost_usd, cost_usd, latency_ms, upstream_latency_ms, attempts, error_code,
       routing, created_at, signature, signing_kid, reasoning_effort, streamed, usage_estimated,
       cached_input_tokens, cache_write_tokens, reasoning_tokens
  FROM receipts r
 WHERE r.tenant_id = $1
   AND ($2::text IS NULL OR (r.created_at, r.id) < (SELECT a.created_at, a.id FROM receipts a
                                                      WHERE a.id = $2 AND a.tenant_id = $1))
   AND ($3::text IS NULL OR r.model_slug = $3)
   AND ($4::timestamptz IS NULL OR r.created_at >= $4)
   AND ($5::timestamptz IS NULL OR r.created_at < $5)
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT $6;

-- name: finish_dispatch_many
SELECT finish_dispatch_many($1);
