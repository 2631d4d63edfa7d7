-- Budgets that cannot be overshot: before its upstream call a budgeted job reserves its worst-case
-- cost against every budget that applies (the tenant's and its key's, daily and monthly), in one
-- statement that locks the counters in a fixed order; its receipt settles the reservation to the
-- actual cost in the receipt's own transaction (`finish_dispatch`), so a job is settled exactly once.
-- Postgres is the only copy of the counters.

-- The key that submitted a job, so the worker applies that key's budgets and spend can be read
-- per key (NULL: a batch line, a probe, or a job from before keys were recorded).
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS key_id uuid;

-- One counter per (tenant or key, UTC day or month). `spent_usd` is the settled cost,
-- `reserved_usd` the worst cases of the calls in flight.
CREATE TABLE budget_counters (
    scope        text NOT NULL CHECK (scope IN ('tenant', 'key')),
    scope_id     uuid NOT NULL,
    period       text NOT NULL CHECK (period IN ('day', 'month')),
    period_start date NOT NULL,
    spent_usd    numeric(20, 10) NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
    reserved_usd numeric(20, 10) NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
    PRIMARY KEY (scope, scope_id, period, period_start)
);

-- One reservation per budgeted job; `amount_usd` is what it holds now (a fallback re-sizes it).
CREATE TABLE budget_reservations (
    job_id      text PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    key_id      uuid,
    day         date NOT NULL,
    month       date NOT NULL,
    amount_usd  numeric(20, 10) NOT NULL CHECK (amount_usd >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    settled_at  timestamptz,
    cost_usd    numeric(20, 10) CHECK (cost_usd >= 0)
);
CREATE INDEX budget_reservations_open_idx ON budget_reservations (created_at) WHERE settled_at IS NULL;
CREATE INDEX budget_reservations_key_idx ON budget_reservations (key_id, day) WHERE key_id IS NOT NULL;

-- A counter that does not exist yet starts from what the receipts (tenant) or the settled
-- reservations (key) already say for its period, so a budget set mid-month counts the month.
CREATE FUNCTION budget_counter_open(p_scope text, p_id uuid, p_period text, p_start date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p_end date := CASE p_period WHEN 'day' THEN p_start + 1 ELSE (p_start + interval '1 month')::date END;
    v_spent numeric;
BEGIN
    IF EXISTS (SELECT 1 FROM budget_counters
                WHERE scope = p_scope AND scope_id = p_id AND period = p_period AND period_start = p_start) THEN
        RETURN;
    END IF;
    IF p_scope = 'tenant' THEN
        SELECT coalesce(sum(cost_usd), 0) INTO v_spent FROM receipts
         WHERE tenant_id = p_id AND created_at >= p_start AND created_at < p_end;
    ELSE
        SELECT coalesce(sum(cost_usd), 0) INTO v_spent FROM budget_reservations
         WHERE key_id = p_id AND settled_at IS NOT NULL
           AND (CASE p_period WHEN 'day' THEN day ELSE month END) = p_start;
    END IF;
    INSERT INTO budget_counters (scope, scope_id, period, period_start, spent_usd)
    VALUES (p_scope, p_id, p_period, p_start, v_spent)
    ON CONFLICT DO NOTHING;
END $$;

-- Reserve (or re-size) a job's reservation. `p_limits` is a JSON array of the budgets that apply,
-- [{"scope": "tenant"|"key", "period": "day"|"month", "limit": 12.5, "name": "..."}]; counters are
-- kept for every scope and period even without a limit. Returns NULL when reserved, else the
-- first budget that has no room: {"name", "limit", "left"}. A settled job's reservation is not
-- touched (NULL: the job is done, there is nothing to hold).
CREATE FUNCTION budget_reserve(p_job text, p_tenant uuid, p_key uuid, p_amount numeric, p_limits jsonb,
                               p_now timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_day date;
    v_month date;
    v_old numeric;
    v_settled timestamptz;
    v_delta numeric;
    v_locked integer;
    v_refusal jsonb;
BEGIN
    -- This statement's own commit need not wait for the disk: the hold is visible to every other
    -- reservation as soon as it commits, which is what keeps budgets from being overshot. Only a
    -- crash of Postgres itself could lose the last fraction of a second of holds; the receipt then
    -- finds none and still counts its cost (budget_settle). This saves a WAL flush per call.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT amount_usd, settled_at, day, month INTO v_old, v_settled, v_day, v_month
      FROM budget_reservations WHERE job_id = p_job FOR UPDATE;
    IF FOUND AND v_settled IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF NOT FOUND THEN
        v_old := 0;
        v_day := (p_now AT TIME ZONE 'UTC')::date;
        v_month := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
    END IF;
    v_delta := p_amount - v_old;
    FOR attempt IN 1..2 LOOP
        -- Lock every counter this job touches, always in the primary key's order (no deadlock),
        -- and find the first budget without room, in one query.
        WITH locked AS MATERIALIZED (
            SELECT scope, period, spent_usd, reserved_usd FROM budget_counters
             WHERE ((scope = 'tenant' AND scope_id = p_tenant) OR (scope = 'key' AND scope_id = p_key))
               AND ((period = 'day' AND period_start = v_day) OR (period = 'month' AND period_start = v_month))
             ORDER BY scope, scope_id, period, period_start
               FOR UPDATE)
        SELECT (SELECT count(*) FROM locked),
               (SELECT jsonb_build_object('name', b->>'name', 'limit', b->'limit',
                                          'left', greatest((b->>'limit')::numeric - l.spent_usd - l.reserved_usd
                                                           + v_old, 0))
                  FROM locked l JOIN jsonb_array_elements(p_limits) b
                    ON b->>'scope' = l.scope AND b->>'period' = l.period
                 WHERE v_delta > (b->>'limit')::numeric - l.spent_usd - l.reserved_usd
                 ORDER BY l.scope, l.period LIMIT 1)
          INTO v_locked, v_refusal;
        EXIT WHEN v_locked >= (CASE WHEN p_key IS NULL THEN 2 ELSE 4 END);
        -- The first call of a period: open its counters, then lock and check again.
        PERFORM budget_counter_open('tenant', p_tenant, 'day', v_day);
        PERFORM budget_counter_open('tenant', p_tenant, 'month', v_month);
        IF p_key IS NOT NULL THEN
            PERFORM budget_counter_open('key', p_key, 'day', v_day);
            PERFORM budget_counter_open('key', p_key, 'month', v_month);
        END IF;
    END LOOP;
    IF v_delta > 0 AND v_refusal IS NOT NULL THEN
        RETURN v_refusal;
    END IF;
    UPDATE budget_counters SET reserved_usd = greatest(reserved_usd + v_delta, 0)
     WHERE ((scope = 'tenant' AND scope_id = p_tenant) OR (scope = 'key' AND scope_id = p_key))
       AND ((period = 'day' AND period_start = v_day) OR (period = 'month' AND period_start = v_month));
    INSERT INTO budget_reservations (job_id, tenant_id, key_id, day, month, amount_usd)
    VALUES (p_job, p_tenant, p_key, v_day, v_month, p_amount)
    ON CONFLICT (job_id) DO UPDATE SET amount_usd = EXCLUDED.amount_usd;
    RETURN NULL;
END $$;

-- Settle a reservation to the actual cost (0 releases it), once: a settled one is left alone.
CREATE FUNCTION budget_settle(p_job text, p_cost numeric) RETURNS void
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
    -- Lock in the same order as budget_reserve does, or the two can deadlock.
    PERFORM 1 FROM budget_counters
     WHERE ((scope = 'tenant' AND scope_id = r.tenant_id) OR (scope = 'key' AND scope_id = r.key_id))
       AND ((period = 'day' AND period_start = r.day) OR (period = 'month' AND period_start = r.month))
     ORDER BY scope, scope_id, period, period_start
       FOR UPDATE;
    UPDATE budget_counters
       SET reserved_usd = greatest(reserved_usd - r.amount_usd, 0), spent_usd = spent_usd + p_cost
     WHERE ((scope = 'tenant' AND scope_id = r.tenant_id) OR (scope = 'key' AND scope_id = r.key_id))
       AND ((period = 'day' AND period_start = r.day) OR (period = 'month' AND period_start = r.month));
END $$;

-- The receipt settles its job's reservation in the receipt's own transaction, after the audit
-- append: exactly one receipt per job, so exactly one settlement. After the append, because the
-- append holds the tenant's chain lock: every transaction takes the chain lock before the
-- counters (a reservation takes only the counters), so a group commit and a reservation can never
-- wait for each other in a circle. The body is 0007's, with the settlement and the job's key added.
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
    PERFORM budget_settle(j.id, coalesce(r.cost_usd, 0));
    IF batch IS NOT NULL THEN
        UPDATE batches
           SET completed = completed + (j.status = 'succeeded')::int,
               failed = failed + (j.status <> 'succeeded')::int
         WHERE id = batch;
    END IF;
    RETURN true;
END $$;

-- The reconciler's sweep of open reservations older than `p_age`: one whose receipt exists is
-- settled to it; one whose job ended without a receipt is released; one with no job row (a
-- synchronous job's row is written when it finishes) is released only after `p_orphan_age`, longer
-- than any synchronous job can run. A job still queued or running keeps its reservation.
CREATE FUNCTION budget_release_stale(p_age interval, p_orphan_age interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT b.job_id, b.created_at, rc.cost_usd AS receipt_cost, j.status, j.id AS row_id
          FROM budget_reservations b
          LEFT JOIN receipts rc ON rc.job_id = b.job_id
          LEFT JOIN jobs j ON j.id = b.job_id
         WHERE b.settled_at IS NULL AND b.created_at < now() - p_age
         ORDER BY b.job_id
    LOOP
        -- No row lock is taken here: budget_settle settles each one at most once on its own, and
        -- a reservation of a job still running is not touched at all.
        IF r.receipt_cost IS NOT NULL THEN
            PERFORM budget_settle(r.job_id, r.receipt_cost);
        ELSIF r.row_id IS NOT NULL AND r.status NOT IN ('queued', 'running') THEN
            PERFORM budget_settle(r.job_id, 0);
        ELSIF r.row_id IS NULL AND r.created_at < now() - p_orphan_age THEN
            PERFORM budget_settle(r.job_id, 0);
        ELSE
            CONTINUE;
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

