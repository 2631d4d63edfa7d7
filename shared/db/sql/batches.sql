-- Batches: creation, reads, cancellation, the feeder's work and finalisation.

-- name: create_batch
INSERT INTO batches (id, tenant_id, input_file_id, endpoint, completion_window, metadata, status, total,
                     expires_at, key_id)
VALUES ($1, $2, $3, $4, $5, $6, 'validating', $7, $8, $9)
RETURNING *;

-- name: get_batch
SELECT * FROM batches WHERE id = $1 AND tenant_id = $2;

-- name: get_batch_by_id
SELECT * FROM batches WHERE id = $1;

-- name: list_batches
-- Newest first; `after` is the id of the last batch of the previous page (OpenAI's cursor).
SELECT b.* FROM batches b
 WHERE b.tenant_id = $1
   AND ($2::text IS NULL OR (b.created_at, b.id) < (SELECT a.created_at, a.id FROM batches a
                                                      WHERE a.id = $2 AND a.tenant_id = $1))
 ORDER BY b.created_at DESC, b.id DESC
 LIMIT $3;

-- name: request_cancel
UPDATE batches SET status = 'cancelling', cancelling_at = now()
 WHERE id = $1 AND tenant_id = $2 AND status IN ('validating', 'in_progress')
RETURNING *;

-- name: open_batches
SELECT id, tenant_id, status, total, fed_through, input_file_id, expires_at, last_fed_at, key_id
  FROM batches
 WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
 ORDER BY created_at;

-- name: materialize_lines
-- Turn input lines (from, to] into queued jobs. Idempotent: lines that are already jobs are skipped.
-- A line Postgres cannot hold as jsonb becomes a job without a request, which fails on its own.
INSERT INTO jobs (id, tenant_id, kind, status, requested_model, request, batch_id, line_no, custom_id, created_at,
                  key_id)
SELECT $4 || fl.line_no, b.tenant_id, 'batch', 'queued', coalesce(body->>'model', ''), body, b.id, fl.line_no,
       fl.custom_id, now(), b.key_id
  FROM batches b
  JOIN file_lines fl ON fl.file_id = b.input_file_id AND fl.line_no > $2 AND fl.line_no <= $3
 CROSS JOIN LATERAL (SELECT try_jsonb(fl.raw) -> 'body' AS body) AS parsed  -- NULL: fails alone when run
 WHERE b.id = $1
ON CONFLICT DO NOTHING
RETURNING id;

-- name: line_sizes
-- What the batch rate limits count for input lines (from, to], in order: the line's size in bytes
-- and the output caps it asks for (text; NULL when absent or unreadable).
SELECT fl.line_no, octet_length(fl.raw) AS bytes,
       parsed.body->>'max_completion_tokens' AS max_completion_tokens, parsed.body->>'max_tokens' AS max_tokens
  FROM batches b
  JOIN file_lines fl ON fl.file_id = b.input_file_id AND fl.line_no > $2 AND fl.line_no <= $3
 CROSS JOIN LATERAL (SELECT try_jsonb(fl.raw) -> 'body' AS body) AS parsed
 WHERE b.id = $1
 ORDER BY fl.line_no;

-- name: mark_fed
UPDATE batches
   SET fed_through = greatest(fed_through, $2), last_fed_at = now(),
       status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END,
       in_progress_at = coalesce(in_progress_at, now())
 WHERE id = $1 AND status IN ('validating', 'in_progress');

-- name: close_open_lines
-- Cancelled or expired: lines not yet started never run. Running lines finish.
UPDATE jobs SET status = $2, finished_at = now()
 WHERE batch_id = $1 AND status = 'queued';

-- name: has_open_lines
SELECT EXISTS (SELECT 1 FROM jobs WHERE batch_id = $1 AND status IN ('queued', 'running'));

-- name: begin_finalizing
UPDATE batches SET status = 'finalizing', finalizing_at = now()
 WHERE id = $1 AND status IN ('validating', 'in_progress');

-- name: finish_batch
UPDATE batches
   SET status = $2, output_file_id = $3, error_file_id = $4,
       completed_at = CASE WHEN $2 = 'completed' THEN now() END,
       expired_at = CASE WHEN $2 = 'expired' THEN now() END,
       cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() END
 WHERE id = $1 AND status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
RETURNING *;

-- name: succeeded_lines_after
SELECT line_no, custom_id, id, http_status, response
  FROM jobs
 WHERE batch_id = $1 AND status = 'succeeded' AND line_no > $2
 ORDER BY line_no
 LIMIT $3;

-- name: unsucceeded_lines_after
-- Every input line without a success: failed lines, and lines that expired or were cancelled
-- (whether or not they had become jobs).
SELECT fl.line_no, fl.custom_id, j.id, j.status, j.http_status, j.response
  FROM batches b
  JOIN file_lines fl ON fl.file_id = b.input_file_id
  LEFT JOIN jobs j ON j.batch_id = b.id AND j.line_no = fl.line_no
 WHERE b.id = $1 AND fl.line_no > $2 AND (j.status IS NULL OR j.status <> 'succeeded')
 ORDER BY fl.line_no
 LIMIT $3;

-- name: open_stored_jobs
-- Accepted work that has not finished: the reconciler checks that each one still has its queue
-- entry. Queued jobs count once they are older than $1, started ones once they started before $3.
SELECT id FROM jobs
 WHERE status IN ('queued', 'running') AND kind IN ('async', 'batch')
   AND created_at < now() - $1::interval
   AND (status = 'queued' OR started_at < now() - $3::interval)
 ORDER BY created_at
 LIMIT $2;
