-- Fanout runs and model probes.

-- name: create_run
-- A run asked for, not yet planned: a probe worker plans it (`plan_run`).
INSERT INTO fanout_runs (id, trigger, provider_filter, status, planned, plan)
VALUES ($1, $2, $3, 'planning', 0, '{}')
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: store_run_plan
-- Exactly one planner moves a run from 'planning' to 'running' with what it will probe.
UPDATE fanout_runs
   SET status = 'running', planned = cardinality($2::text[]), plan = $2, not_probed = $3, estimated_cost_usd = $4
 WHERE id = $1 AND status = 'planning'
RETURNING id;

-- name: get_run
SELECT * FROM fanout_runs WHERE id = $1;

-- name: latest_runs
SELECT * FROM fanout_runs ORDER BY started_at DESC, id DESC LIMIT $1;

-- name: record_probe
SELECT record_probe($1);

-- name: claim_decision
-- Exactly one caller gets to apply a run's decisions.
UPDATE fanout_runs SET decided_at = now(), status = 'completed', finished_at = coalesce(finished_at, now())
 WHERE id = $1 AND status = 'running' AND decided_at IS NULL AND recorded >= planned
RETURNING *;

-- name: store_decisions
UPDATE fanout_runs SET guard = $2, decisions = $3 WHERE id = $1;

-- name: run_probes
SELECT * FROM model_probes WHERE run_id = $1 ORDER BY provider, model_slug;

-- name: recent_outcomes
-- The latest `limit` passed/failed outcomes per model, from runs whose decisions were not withheld.
SELECT slug, outcome, reason, run_id, status_code, error_code, latency_ms, upstream_model, upstream_url
  FROM unnest($1::text[]) AS m(slug)
 CROSS JOIN LATERAL (
       SELECT p.outcome, p.reason, p.run_id, p.status_code, p.error_code, p.latency_ms, p.upstream_model,
              p.upstream_url
         FROM model_probes p
         JOIN fanout_runs r ON r.id = p.run_id
        WHERE p.model_slug = m.slug AND p.outcome <> 'skipped' AND r.guard IS NULL
          AND (r.decided_at IS NOT NULL OR r.id = $3)
        ORDER BY p.created_at DESC
        LIMIT $2) AS x;

-- name: stalled_runs
-- Runs still unplanned or unfinished after a while: their planning or probe jobs may have been lost.
SELECT id, status FROM fanout_runs WHERE status IN ('planning', 'running') AND started_at < now() - $1::interval;

-- name: unrecorded_probes
-- Models a run planned to probe that have no result yet (their probe job was lost).
SELECT m.slug FROM fanout_runs r CROSS JOIN LATERAL unnest(r.plan) AS m(slug)
 WHERE r.id = $1
   AND NOT EXISTS (SELECT 1 FROM model_probes p WHERE p.run_id = r.id AND p.model_slug = m.slug);
