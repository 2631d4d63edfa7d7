-- Recent successful, non-probe receipts: the source the learned statistics are rebuilt from.
-- A window keeps at most `$3` samples of one tenant (its newest) and `$2` in all; a call whose
-- output reached the caller's own max_tokens was cut by the caller and teaches nothing.

-- name: recent_ratios
-- Per model, newest first: (tenant, input, output) token counts of the receipts its window keeps.
SELECT slug, tenant_id, input_tokens, output_tokens
  FROM (SELECT x.*, row_number() OVER (PARTITION BY x.slug ORDER BY x.created_at DESC) AS n
          FROM (SELECT r.model_slug AS slug, r.tenant_id, r.input_tokens, r.output_tokens, r.created_at,
                       row_number() OVER (PARTITION BY r.model_slug, r.tenant_id ORDER BY r.created_at DESC) AS own
                  FROM receipts r
                  JOIN jobs j ON j.id = r.job_id
                 WHERE r.model_slug = ANY($1::text[]) AND r.status = 'succeeded' AND j.kind <> 'probe'
                   AND r.input_tokens > 0
                   AND COALESCE(r.output_tokens < COALESCE((j.request->>'max_completion_tokens')::bigint,
                                                           (j.request->>'max_tokens')::bigint), true)) AS x
         WHERE x.own <= $3) AS y
 WHERE n <= $2
 ORDER BY slug, created_at DESC;

-- name: recent_latencies
-- Per (model, reasoning effort sent), newest first: (tenant, upstream latency) of the receipts its window keeps.
SELECT slug, reasoning_effort, tenant_id, upstream_latency_ms
  FROM (SELECT x.*, row_number() OVER (PARTITION BY x.slug, x.reasoning_effort ORDER BY x.created_at DESC) AS n
          FROM (SELECT r.model_slug AS slug, r.reasoning_effort, r.tenant_id, r.upstream_latency_ms, r.created_at,
                       row_number() OVER (PARTITION BY r.model_slug, r.reasoning_effort, r.tenant_id
                                          ORDER BY r.created_at DESC) AS own
                  FROM receipts r
                  JOIN jobs j ON j.id = r.job_id
                 WHERE r.model_slug = ANY($1::text[]) AND r.status = 'succeeded' AND j.kind <> 'probe'
                   AND r.input_tokens > 0 AND r.upstream_latency_ms IS NOT NULL
                   AND COALESCE(r.output_tokens < COALESCE((j.request->>'max_completion_tokens')::bigint,
                                                           (j.request->>'max_tokens')::bigint), true)) AS x
         WHERE x.own <= $3) AS y
 WHERE n <= $2
 ORDER BY slug, reasoning_effort, created_at DESC;
