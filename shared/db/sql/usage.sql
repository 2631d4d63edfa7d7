-- A tenant's spend, summed from its receipts over [$2, $3) (UTC), one row per group.

-- name: usage_by_day
SELECT (r.created_at AT TIME ZONE 'UTC')::date AS key,
       count(*) AS requests,
       count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       coalesce(sum(r.input_tokens), 0) AS input_tokens,
       coalesce(sum(r.output_tokens), 0) AS output_tokens,
       coalesce(sum(r.cached_input_tokens), 0) AS cached_input_tokens,
       coalesce(sum(r.cost_usd), 0) AS cost_usd
  FROM receipts r
 WHERE r.tenant_id = $1 AND r.created_at >= $2 AND r.created_at < $3
 GROUP BY 1
 ORDER BY 1;

-- name: usage_by_model
-- Grouped by the served model's slug; NULL gathers the receipts no model served.
SELECT r.model_slug AS key,
       count(*) AS requests,
       count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       coalesce(sum(r.input_tokens), 0) AS input_tokens,
       coalesce(sum(r.output_tokens), 0) AS output_tokens,
       coalesce(sum(r.cached_input_tokens), 0) AS cached_input_tokens,
       coalesce(sum(r.cost_usd), 0) AS cost_usd
  FROM receipts r
 WHERE r.tenant_id = $1 AND r.created_at >= $2 AND r.created_at < $3
 GROUP BY 1
 ORDER BY 1 NULLS LAST;

-- name: usage_by_key
-- Grouped by the API key that submitted each job; NULL gathers batch lines and older jobs.
SELECT j.key_id::text AS key,
       count(*) AS requests,
       count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
       coalesce(sum(r.input_tokens), 0) AS input_tokens,
       coalesce(sum(r.output_tokens), 0) AS output_tokens,
       coalesce(sum(r.cached_input_tokens), 0) AS cached_input_tokens,
       coalesce(sum(r.cost_usd), 0) AS cost_usd
  FROM receipts r JOIN jobs j ON j.id = r.job_id
 WHERE r.tenant_id = $1 AND r.created_at >= $2 AND r.created_at < $3
 GROUP BY 1
 ORDER BY 1 NULLS LAST;
