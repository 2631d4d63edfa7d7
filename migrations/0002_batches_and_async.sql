-- Files, batches, asynchronous jobs and idempotency keys.
-- A batch line becomes a job row when the feeder reaches it; everything a caller was told was
-- accepted (the file's lines, the batch) is here before the answer goes out.

CREATE TABLE files (
    id          text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    purpose     text NOT NULL CHECK (purpose IN ('batch', 'batch_output')),
    kind        text NOT NULL CHECK (kind IN ('input', 'output', 'error')),
    filename    text NOT NULL,
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    line_count  integer NOT NULL DEFAULT 0 CHECK (line_count >= 0),
    status      text NOT NULL CHECK (status IN ('uploading', 'processed')),
    batch_id    text,                  -- output and error files: the batch whose results they are
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_tenant_created_idx ON files (tenant_id, created_at DESC);

-- The request lines of an input file, validated when uploaded. `raw` is the line as sent.
CREATE TABLE file_lines (
    file_id    text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    line_no    integer NOT NULL CHECK (line_no >= 1),
    custom_id  text NOT NULL,
    raw        text NOT NULL,
    PRIMARY KEY (file_id, line_no),
    UNIQUE (file_id, custom_id)
);

CREATE TABLE batches (
    id                 text PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    input_file_id      text NOT NULL REFERENCES files (id),
    endpoint           text NOT NULL,
    completion_window  text NOT NULL,
    metadata           jsonb,
    status             text NOT NULL CHECK (status IN ('validating', 'failed', 'in_progress', 'finalizing',
                                                       'completed', 'expired', 'cancelling', 'cancelled')),
    errors             jsonb,
    output_file_id     text REFERENCES files (id),
    error_file_id      text REFERENCES files (id),
    total              integer NOT NULL CHECK (total >= 0),
    completed          integer NOT NULL DEFAULT 0,      -- lines that succeeded
    failed             integer NOT NULL DEFAULT 0,      -- lines that ran and failed
    fed_through        integer NOT NULL DEFAULT 0,      -- lines 1..fed_through are jobs on the queue
    last_fed_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    in_progress_at     timestamptz,
    finalizing_at      timestamptz,
    completed_at       timestamptz,
    failed_at          timestamptz,
    expired_at         timestamptz,
    cancelling_at      timestamptz,
    cancelled_at       timestamptz
);
CREATE INDEX batches_tenant_created_idx ON batches (tenant_id, created_at DESC, id DESC);
CREATE INDEX batches_open_idx ON batches (created_at)
    WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

ALTER TABLE jobs
    ADD COLUMN batch_id   text REFERENCES batches (id),
    ADD COLUMN line_no    integer,
    ADD COLUMN custom_id  text,
    ADD COLUMN started_at timestamptz,
    ADD CONSTRAINT jobs_batch_line CHECK ((batch_id IS NULL) = (line_no IS NULL));
CREATE UNIQUE INDEX jobs_batch_line_idx ON jobs (batch_id, line_no) WHERE batch_id IS NOT NULL;
-- Work that was accepted and has not finished: what the reconciler checks against Redis, and
-- what tells the supervisor a batch still has lines in flight.
CREATE INDEX jobs_open_idx ON jobs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_batch_open_idx ON jobs (batch_id) WHERE batch_id IS NOT NULL AND status IN ('queued', 'running');

-- Idempotency-Key: the first request with a key runs; repeats replay its answer.
CREATE TABLE idempotency_keys (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    key              text NOT NULL,
    request_hash     text NOT NULL,
    locked_until     timestamptz,      -- set while the first request runs; NULL once answered
    response_status  integer,
    response_headers jsonb,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- finish_dispatch now also counts a batch line's outcome on its batch (one short row lock, in
-- the same statement, so the counts can never disagree with the jobs).
CREATE OR REPLACE FUNCTION finish_dispatch(
    p_job jsonb, p_receipt jsonb, p_event_type text, p_prefix text, p_suffix text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j     jobs;
    r     receipts;
    won   text;
    batch text;
BEGIN
    j := jsonb_populate_record(NULL::jobs, p_job);
    INSERT INTO jobs (id, tenant_id, kind, status, requested_model, response, http_status, receipt_id,
                      created_at, finished_at)
    VALUES (j.id, j.tenant_id, j.kind, j.status, j.requested_model, j.response, j.http_status, j.receipt_id,
            j.created_at, j.finished_at)
    ON CONFLICT (id) DO UPDATE
       SET status = EXCLUDED.status, response = EXCLUDED.response, http_status = EXCLUDED.http_status,
           receipt_id = EXCLUDED.receipt_id, finished_at = EXCLUDED.finished_at
     WHERE jobs.status IN ('queued', 'running')
    RETURNING jobs.id, jobs.batch_id INTO won, batch;
    IF won IS NULL THEN
        RETURN false;
    END IF;
    r := jsonb_populate_record(NULL::receipts, p_receipt);
    INSERT INTO receipts VALUES (r.*);
    PERFORM audit_append(j.tenant_id, p_event_type, j.id, p_prefix, p_suffix, j.finished_at);
    IF batch IS NOT NULL THEN
        UPDATE batches
           SET completed = completed + (j.status = 'succeeded')::int,
               failed = failed + (j.status <> 'succeeded')::int
         WHERE id = batch;
    END IF;
    RETURN true;
END $$;
