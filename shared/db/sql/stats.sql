-- Recent successful, non-probe receipts per model: the source the learned statistics are rebuilt from.

-- name: recent_samples
SELECT m.slug, x.input_tokens, x.output_tokens, x.upstream_latency_ms
  FROM unnest($1::text[]) AS m(slug)
 CROSS JOIN LATERAL (
       SELECT r.input_tokens, r.output_tokens, r.upstream_latency_ms
         FROM receipts r
         JOIN jobs j ON j.id = r.job_id
        WHERE r.model_slug = m.slug AND r.status = 'succeeded' AND j.kind <> 'probe' AND r.input_tokens > 0
        ORDER BY r.created_at DESC
        LIMIT $2) AS x;
