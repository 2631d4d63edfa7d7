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
       routing, created_at
  FROM receipts WHERE id = $1 AND tenant_id = $2;
