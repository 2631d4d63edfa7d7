-- Recent successful, non-probe receipts: the source the learned statistics are rebuilt from.

-- name: recent_ratios
-- Per model, its newest `$2` (input, output) token counts.
SELECT m.slug, x.input_tokens, x.output_tokens
  FROM unnest($1::text[]) AS m(slug)
 CROSS JOIN LATERAL (
       SELECT r.input_tokens, r.output_tokens
         FROM receipts r
         JOIN jobs j ON j.id = r.job_id
        WHERE r.model_slug = m.slug AND r.status = 'succeeded' AND j.kind <> 'probe' AND r.input_tokens > 0
        ORDER BY r.created_at DESC
        LIMIT $2) AS x;

-- name: recent_latencies
-- Per (model, reasoning effort sent), its newest `$2` upstream latencies, newest first.
SELECT slug, reasoning_effort, upstream_latency_ms
  FROM (SELECT r.model_slug AS slug, r.reasoning_effort, r.upstream_latency_ms, r.created_at,
               row_number() OVER (PARTITION BY r.model_slug, r.reasoning_effort ORDER BY r.created_at DESC) AS n
          FROM receipts r
          JOIN jobs j ON j.id = r.job_id
         WHERE r.model_slug = ANY($1::text[]) AND r.status = 'succeeded' AND j.kind <> 'probe'
           AND r.input_tokens > 0 AND r.upstream_latency_ms IS NOT NULL) AS x
 WHERE n <= $2
 ORDER BY slug, reasoning_effort, created_at DESC;
