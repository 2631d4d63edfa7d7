-- Files: input files and their validated request lines; output and error files point at a batch.

-- name: create_file
INSERT INTO files (id, tenant_id, purpose, kind, filename, status, batch_id, bytes, line_count)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, tenant_id, purpose, kind, filename, bytes, line_count, status, batch_id, created_at;

-- name: finish_upload
UPDATE files SET status = 'processed', bytes = $2, line_count = $3 WHERE id = $1
RETURNING id, tenant_id, purpose, kind, filename, bytes, line_count, status, batch_id, created_at;

-- name: delete_file
DELETE FROM files WHERE id = $1;

-- name: get_file
SELECT id, tenant_id, purpose, kind, filename, bytes, line_count, status, batch_id, created_at
  FROM files WHERE id = $1 AND tenant_id = $2;

-- name: list_files
SELECT id, tenant_id, purpose, kind, filename, bytes, line_count, status, batch_id, created_at
  FROM files
 WHERE tenant_id = $1 AND status = 'processed' AND ($2::text IS NULL OR purpose = $2)
 ORDER BY created_at DESC, id DESC
 LIMIT $3;

-- name: first_lines_with_custom_ids
SELECT custom_id, min(line_no) AS line_no FROM file_lines
 WHERE file_id = $1 AND custom_id = ANY($2::text[])
 GROUP BY custom_id;

-- name: file_lines_after
SELECT line_no, raw FROM file_lines WHERE file_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3;

-- name: reserve_input_bytes
-- Grow uploading input file $1 of tenant $2 by $3 bytes, unless the tenant would then store more
-- than $4. The tenant's usage row is locked first, so concurrent uploads of one tenant take turns
-- here and each sees the others' reservations; the trigger on files adds the bytes to that row.
WITH usage AS (
    SELECT input_bytes FROM tenant_file_usage WHERE tenant_id = $2 FOR UPDATE
)
UPDATE files SET bytes = bytes + $3
 WHERE id = $1 AND tenant_id = $2 AND kind = 'input' AND status = 'uploading'
   AND (SELECT input_bytes FROM usage) + $3 <= $4
RETURNING bytes;

-- name: models_of_lines
-- Each model an input file's lines name, with the first line that names it (a body Postgres
-- cannot read names '').
SELECT coalesce(try_jsonb(raw) -> 'body' ->> 'model', '') AS model, min(line_no) AS line_no
  FROM file_lines WHERE file_id = $1
 GROUP BY 1 ORDER BY 2;
