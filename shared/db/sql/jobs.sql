-- Jobs and their receipts. A job is finished exactly once; its receipt is unique.

-- name: finish_job
-- Inserts the row of a synchronous job (first seen here) or finishes a queued one.
-- Returns nothing when the job was already finished: the caller must not write again.
INSERT INTO jobs (id, tenant_id, kind, status, requested_model, response, http_status, receipt_id,
                  created_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE
   SET status = EXCLUDED.status, response = EXCLUDED.response, http_status = EXCLUDED.http_status,
       receipt_id = EXCLUDED.receipt_id, finished_at = EXCLUDED.finished_at
 WHERE jobs.status IN ('queued', 'running')
RETURNING id;

-- name: insert_receipt
INSERT INTO receipts (id, job_id, tenant_id, status, requested_model, model_slug, provider, upstream_model,
                      input_tokens, output_tokens, estimated_cost_usd, cost_usd, latency_ms,
                      upstream_latency_ms, attempts, error_code, routing, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (job_id) DO NOTHING
RETURNING id;

-- name: job_outcome
SELECT id, tenant_id, kind, status, requested_model, response, http_status, receipt_id, created_at,
       finished_at
  FROM jobs WHERE id = $1;

-- name: get_receipt
SELECT id, job_id, tenant_id, status, requested_model, model_slug, provider, upstream_model, input_tokens,
       output_tokens, estimated_cost_usd, cost_usd, latency_ms, upstream_latency_ms, attempts, error_code,
       routing, created_at
  FROM receipts WHERE id = $1 AND tenant_id = $2;
