-- Budget leases: a worker reserves a slice of a budget in advance (a reservation whose id is
-- 'lease:…', taken with the same checked hold as a job's, budget_reserve), so a budgeted call can
-- take its worst case from that slice in memory instead of holding it with a round trip of its
-- own. What every lease and every job holds together still never exceeds a budget. The receipt's
-- transaction moves what the job took from its lease to the job's own reservation and settles that
-- (budget_settle_job), exactly once, as before. See shared/spend/leases.py.

-- Lock the counters of one (tenant, key, day, month) in the primary key's order (every function
-- here locks them in this order, so none can deadlock with another) and move their reserved and
-- spent amounts by the given deltas.
CREATE FUNCTION budget_counters_add(p_tenant uuid, p_key uuid, p_day date, p_month date,
                                    p_reserved numeric, p_spent numeric) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM budget_counters
     WHERE ((scope = 'tenant' AND scope_id = p_tenant) OR (scope = 'key' AND scope_id = p_key))
       AND ((period = 'day' AND period_start = p_day) OR (period = 'month' AND period_start = p_month))
     ORDER BY scope, scope_id, period, period_start
       FOR UPDATE;
    UPDATE budget_counters
       SET reserved_usd = greatest(reserved_usd + p_reserved, 0), spent_usd = spent_usd + p_spent
     WHERE ((scope = 'tenant' AND scope_id = p_tenant) OR (scope = 'key' AND scope_id = p_key))
       AND ((period = 'day' AND period_start = p_day) OR (period = 'month' AND period_start = p_month));
END $$;

-- 0014's budget_settle, with its counter update in budget_counters_add.
CREATE OR REPLACE FUNCTION budget_settle(p_job text, p_cost numeric) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    UPDATE budget_reservations SET settled_at = now(), cost_usd = p_cost
     WHERE job_id = p_job AND settled_at IS NULL
    RETURNING tenant_id, key_id, day, month, amount_usd INTO r;
    IF NOT FOUND THEN
        -- Settled already (nothing to do), or never held: an unbudgeted call, or a hold lost in a
        -- crash of Postgres. A budgeted tenant's counters for today still count the cost.
        IF p_cost > 0 AND NOT EXISTS (SELECT 1 FROM budget_reservations WHERE job_id = p_job) THEN
            UPDATE budget_counters c SET spent_usd = c.spent_usd + p_cost
              FROM receipts rc
             WHERE rc.job_id = p_job AND c.scope = 'tenant' AND c.scope_id = rc.tenant_id
               AND ((c.period = 'day' AND c.period_start = (rc.created_at AT TIME ZONE 'UTC')::date)
                 OR (c.period = 'month'
                     AND c.period_start = date_trunc('month', rc.created_at AT TIME ZONE 'UTC')::date));
        END IF;
        RETURN;
    END IF;
    PERFORM budget_counters_add(r.tenant_id, r.key_id, r.day, r.month, -r.amount_usd, p_cost);
END $$;

-- Grant a lease of up to `p_want`, at most `p_share` of what the tightest budget has left and
-- never less than `p_min` (else nothing: near the limit, calls hold exactly). The read of what is
-- left takes no lock; budget_reserve then checks and holds the grant like any other hold, so a
-- stale read can only make a grant fail. Returns {"granted": amount (0: none), "left": what the
-- tightest budget had left before it}.
CREATE FUNCTION budget_lease_grant(p_lease text, p_tenant uuid, p_key uuid, p_want numeric, p_min numeric,
                                   p_share numeric, p_limits jsonb, p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_day date := (p_now AT TIME ZONE 'UTC')::date;
    v_month date := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
    v_left numeric;
    v_grant numeric;
BEGIN
    PERFORM budget_counter_open('tenant', p_tenant, 'day', v_day);
    PERFORM budget_counter_open('tenant', p_tenant, 'month', v_month);
    IF p_key IS NOT NULL THEN
        PERFORM budget_counter_open('key', p_key, 'day', v_day);
        PERFORM budget_counter_open('key', p_key, 'month', v_month);
    END IF;
    SELECT min((b->>'limit')::numeric - c.spent_usd - c.reserved_usd) INTO v_left
      FROM jsonb_array_elements(p_limits) b
      JOIN budget_counters c
        ON c.scope = b->>'scope' AND c.period = b->>'period'
       AND c.scope_id = CASE c.scope WHEN 'tenant' THEN p_tenant ELSE p_key END
       AND c.period_start = CASE c.period WHEN 'day' THEN v_day ELSE v_month END;
    v_left := greatest(coalesce(v_left, 0), 0);
    v_grant := round(least(p_want, v_left * p_share), 10);
    IF v_grant < p_min OR v_grant <= 0
       OR budget_reserve(p_lease, p_tenant, p_key, v_grant, p_limits, p_now) IS NOT NULL THEN
        RETURN jsonb_build_object('granted', 0, 'left', v_left);
    END IF;
    RETURN jsonb_build_object('granted', v_grant, 'left', v_left);
END $$;

-- Give back what a worker has not handed out of a lease (at most what the lease still holds:
-- what its calls in flight took stays, for their receipts to move). Returns the amount given back.
CREATE FUNCTION budget_lease_return(p_lease text, p_amount numeric) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_back numeric;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT tenant_id, key_id, day, month, amount_usd INTO r
      FROM budget_reservations WHERE job_id = p_lease AND settled_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    v_back := least(greatest(p_amount, 0), r.amount_usd);
    UPDATE budget_reservations SET amount_usd = amount_usd - v_back WHERE job_id = p_lease;
    PERFORM budget_counters_add(r.tenant_id, r.key_id, r.day, r.month, -v_back, 0);
    RETURN v_back;
END $$;

-- Settle a finished job: what it took from a lease (`p_lease` {"id", "amount"}, or NULL) moves to
-- the job's own reservation first (added to one it may hold already, from a fallback held
-- exactly), then that reservation settles to the cost. The counters' reserved total is unchanged
-- by the move. A lease released meanwhile (its worker died an hour ago) moves nothing: the cost is
-- still counted, as for a hold that was lost.
CREATE FUNCTION budget_settle_job(p_job text, p_lease jsonb, p_cost numeric) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_amount numeric;
BEGIN
    IF p_lease IS NOT NULL AND jsonb_typeof(p_lease) = 'object' THEN
        v_amount := (p_lease->>'amount')::numeric;
        UPDATE budget_reservations SET amount_usd = greatest(amount_usd - v_amount, 0)
         WHERE job_id = p_lease->>'id' AND settled_at IS NULL
        RETURNING tenant_id, key_id, day, month INTO r;
        IF FOUND THEN
            INSERT INTO budget_reservations (job_id, tenant_id, key_id, day, month, amount_usd)
            VALUES (p_job, r.tenant_id, r.key_id, r.day, r.month, v_amount)
            ON CONFLICT (job_id) DO UPDATE SET amount_usd = budget_reservations.amount_usd + EXCLUDED.amount_usd
             WHERE budget_reservations.settled_at IS NULL;
        END IF;
    END IF;
    PERFORM budget_settle(p_job, p_cost);
END $$;

-- Lock order, everywhere: lease rows (in id order), then a tenant's audit chain lock, then the
-- counters (in key order). A lease's return locks its row, then the counters; a group commit
-- would otherwise lock one job's counters and then another job's lease, and the two could wait
-- for each other. So finish_dispatch takes its lease's row first, and finish_dispatch_many takes
-- every lease of its group first, before any chain lock.

-- 0014's finish_dispatch, settling through budget_settle_job with the job's lease hold.
CREATE OR REPLACE FUNCTION finish_dispatch(
    p_job jsonb, p_receipt jsonb, p_event_type text, p_prefix text, p_suffix text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j     jobs;
    r     receipts;
    won   text;
    batch text;
BEGIN
    IF p_job ? 'budget_lease' THEN
        PERFORM 1 FROM budget_reservations WHERE job_id = p_job -> 'budget_lease' ->> 'id' FOR UPDATE;
    END IF;
    j := jsonb_populate_record(NULL::jobs, p_job);
    INSERT INTO jobs (id, tenant_id, kind, status, requested_model, response, http_status, receipt_id,
                      created_at, finished_at, attempt, key_id)
    VALUES (j.id, j.tenant_id, j.kind, j.status, j.requested_model, j.response, j.http_status, j.receipt_id,
            j.created_at, j.finished_at, j.attempt, j.key_id)
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
    PERFORM budget_settle_job(j.id, p_job->'budget_lease', coalesce(r.cost_usd, 0));
    IF batch IS NOT NULL THEN
        UPDATE batches
           SET completed = completed + (j.status = 'succeeded')::int,
               failed = failed + (j.status <> 'succeeded')::int
         WHERE id = batch;
    END IF;
    RETURN true;
END $$;

-- 0005's finish_dispatch_many, taking the group's lease rows first (see the lock order above).
CREATE OR REPLACE FUNCTION finish_dispatch_many(p_items jsonb) RETURNS boolean[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    item   jsonb;
    ord    integer;
    result boolean[] := array_fill(false, ARRAY[jsonb_array_length(p_items)]);
BEGIN
    PERFORM 1 FROM budget_reservations
     WHERE job_id IN (SELECT e.value -> 'job' -> 'budget_lease' ->> 'id' FROM jsonb_array_elements(p_items) AS e)
     ORDER BY job_id
       FOR UPDATE;
    FOR item, ord IN
        SELECT e.value, e.ordinality::integer
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e
         ORDER BY e.value -> 'job' ->> 'tenant_id', e.ordinality
    LOOP
        result[ord] := finish_dispatch(item -> 'job', item -> 'receipt', item ->> 'event_type',
                                       item ->> 'prefix', item ->> 'suffix');
    END LOOP;
    RETURN result;
END $$;
