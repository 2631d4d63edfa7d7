-- What a metrics scrape reads from Postgres: one round trip, on indexed or small sets.

-- name: scrape_state
-- Lines of the batches still open or created in the last day, by state (pending: not yet fed to the
-- queue; running: fed, not finished), and the last completed fanout run's probe counts.
WITH recent AS (
    SELECT total, fed_through, completed, failed
      FROM batches
     WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
        OR created_at > now() - interval '1 day'
), last_run AS (
    SELECT passed, failed, skipped
      FROM fanout_runs
     WHERE status = 'completed'
     ORDER BY started_at DESC, id DESC
     LIMIT 1
)
SELECT coalesce((SELECT sum(greatest(total - fed_through, 0)) FROM recent), 0)::bigint AS lines_pending,
       coalesce((SELECT sum(greatest(fed_through - completed - failed, 0)) FROM recent), 0)::bigint AS lines_running,
       coalesce((SELECT sum(completed) FROM recent), 0)::bigint AS lines_completed,
       coalesce((SELECT sum(failed) FROM recent), 0)::bigint AS lines_failed,
       (SELECT passed FROM last_run) AS fanout_passed,
       (SELECT failed FROM last_run) AS fanout_failed,
       (SELECT skipped FROM last_run) AS fanout_skipped;
