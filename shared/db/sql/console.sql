-- The operator console's reads (gateway/console): every tenant, bounded windows, a BRIN index
-- on receipts.created_at (migration 0017) so a window is a range scan, not the whole table.

-- name: spend_today
SELECT model_slug AS model, count(*) AS calls, coalesce(sum(cost_usd), 0) AS cost_usd
  FROM receipts
 WHERE created_at >= date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
   AND model_slug IS NOT NULL
 GROUP BY model_slug
 ORDER BY cost_usd DESC, model_slug
 LIMIT 25;

-- name: upstream_errors
-- Failed calls that reached a provider in the last hour, by provider and error code.
SELECT provider, error_code, count(*) AS calls
  FROM receipts
 WHERE created_at >= $1::timestamptz - interval '1 hour'
   AND status = 'failed' AND provider IS NOT NULL AND attempts > 0
 GROUP BY provider, error_code
 ORDER BY calls DESC, provider, error_code
 LIMIT 50;

-- name: recent_decisions
-- The newest routing decisions of the last hour: what was asked, what answered, why, and what failed first.
SELECT created_at, requested_model, model_slug, provider, status, error_code,
       routing -> 'decision_log' ->> 'reason' AS reason,
       coalesce(routing -> 'fallbacks', '[]'::jsonb) AS fallbacks
  FROM receipts
 WHERE created_at >= $1::timestamptz - interval '1 hour'
 ORDER BY created_at DESC, id DESC
 LIMIT 50;

-- name: batch_progress
SELECT id, status, total, completed, failed, created_at
  FROM batches
 WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
    OR coalesce(completed_at, failed_at, expired_at, cancelled_at) >= $1::timestamptz - interval '1 hour'
 ORDER BY created_at DESC
 LIMIT 20;
