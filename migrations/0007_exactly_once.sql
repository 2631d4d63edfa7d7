-- Exactly once under faults: leases that fence stale workers, bounded attempts, answers stored
-- losslessly, idempotency keys bound to the work they created, poisoned batch lines isolated.

-- Answers are stored as the exact JSON text they were sent as. `jsonb` cannot hold U+0000,
-- which a provider may legitimately send inside a string (escaped as \u0000 in JSON text);
-- `text` holding JSON text can, because the escape is plain ASCII there.
ALTER TABLE jobs ALTER COLUMN response TYPE text USING response::text;
ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE text USING response_body::text;

-- The newest attempt that took a job: its lease. A finish carries the attempt it ran as; a
-- stale worker (its lease taken over) may still deliver a success to an unfinished job, but
-- never a failure. Stored jobs count attempts in their claim; a sync job gets a row only when
-- a retry registers its attempt, or when it finishes.
ALTER TABLE jobs ADD COLUMN attempt integer NOT NULL DEFAULT 0;

-- The work an idempotency key created (a job or a batch). A bound key is never taken over by
-- lock expiry: a repeat resolves through the work itself.
ALTER TABLE idempotency_keys ADD COLUMN work_id text;

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
                      created_at, finished_at, attempt)
    VALUES (j.id, j.tenant_id, j.kind, j.status, j.requested_model, j.response, j.http_status, j.receipt_id,
            j.created_at, j.finished_at, j.attempt)
    ON CONFLICT (id) DO UPDATE
       SET status = EXCLUDED.status, response = EXCLUDED.response, http_status = EXCLUDED.http_status,
           receipt_id = EXCLUDED.receipt_id, finished_at = EXCLUDED.finished_at
     WHERE jobs.status IN ('queued', 'running')
       AND (EXCLUDED.attempt >= jobs.attempt OR EXCLUDED.status = 'succeeded')
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

-- JSON text to jsonb, or NULL when Postgres cannot hold it (a \u0000 escape, say): the feeder
-- turns such a line into a job that fails alone instead of aborting the whole feed.
CREATE FUNCTION try_jsonb(p text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
