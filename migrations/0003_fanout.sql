-- Scheduled fanout: every catalog model is probed through the real call path; rows are switched
-- off and on from the evidence, with hysteresis, and every switch is an audit event.

CREATE TABLE fanout_runs (
    id                  text PRIMARY KEY,
    trigger             text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    provider_filter     text,
    status              text NOT NULL CHECK (status IN ('running', 'completed')),
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    planned             integer NOT NULL,            -- probes issued (after the spend cap)
    plan                text[] NOT NULL,             -- the slugs those probes are for
    recorded            integer NOT NULL DEFAULT 0,  -- probes whose result is in
    passed              integer NOT NULL DEFAULT 0,
    failed              integer NOT NULL DEFAULT 0,
    skipped             integer NOT NULL DEFAULT 0,  -- no credentials, or inconclusive (rate limited)
    not_probed          jsonb NOT NULL DEFAULT '[]'::jsonb,  -- slugs left out by the spend cap
    estimated_cost_usd  numeric(20, 10) NOT NULL DEFAULT 0,
    guard               jsonb,                       -- why decisions were withheld, if they were
    decisions           jsonb,                       -- what was switched, with the evidence
    decided_at          timestamptz
);
CREATE INDEX fanout_runs_started_idx ON fanout_runs (started_at DESC);

CREATE TABLE model_probes (
    run_id          text NOT NULL REFERENCES fanout_runs (id),
    model_slug      text NOT NULL,
    provider        text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('passed', 'failed', 'skipped')),
    status_code     integer,
    error_code      text,
    reason          text,                 -- for failures: model_not_found, http_404_path, auth_failed, ...
    latency_ms      integer,
    upstream_model  text NOT NULL,
    upstream_url    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, model_slug)
);
CREATE INDEX model_probes_model_idx ON model_probes (model_slug, created_at DESC);

-- Record one probe result once (a re-run probe job changes nothing) and count it on its run.
-- Returns true when this call recorded the last outstanding probe of the run.
CREATE FUNCTION record_probe(p jsonb) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    mp       model_probes;
    inserted text;
    outstanding integer;
BEGIN
    mp := jsonb_populate_record(NULL::model_probes, p);
    INSERT INTO model_probes (run_id, model_slug, provider, outcome, status_code, error_code, reason, latency_ms,
                              upstream_model, upstream_url, created_at)
    VALUES (mp.run_id, mp.model_slug, mp.provider, mp.outcome, mp.status_code, mp.error_code, mp.reason,
            mp.latency_ms, mp.upstream_model, mp.upstream_url, now())
    ON CONFLICT DO NOTHING
    RETURNING model_slug INTO inserted;
    IF inserted IS NULL THEN
        RETURN false;
    END IF;
    UPDATE fanout_runs
       SET recorded = recorded + 1,
           passed = passed + (mp.outcome = 'passed')::int,
           failed = failed + (mp.outcome = 'failed')::int,
           skipped = skipped + (mp.outcome = 'skipped')::int
     WHERE id = mp.run_id
    RETURNING planned - recorded INTO outstanding;
    RETURN outstanding = 0;
END $$;
