-- The schema the migrations build, for reading (never applied). Regenerate with `make schema`;
-- a test fails when this file is stale.

CREATE FUNCTION public.audit_append(p_tenant uuid, p_event_type text, p_job_id text, p_prefix text, p_suffix text, p_created_at timestamp with time zone, OUT seq bigint, OUT event_hash text) RETURNS record
    LANGUAGE plpgsql
    AS $$
DECLARE
    head_seq  bigint;
    head_hash text;
    payload   text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_tenant::text, 0));
    SELECT e.seq, e.event_hash INTO head_seq, head_hash
      FROM audit_events e WHERE e.tenant_id = p_tenant ORDER BY e.seq DESC LIMIT 1;
    seq := coalesce(head_seq, 0) + 1;
    payload := p_prefix || seq::text || p_suffix;
    event_hash := encode(sha256(convert_to(coalesce(head_hash, '') || payload, 'UTF8')), 'hex');
    INSERT INTO audit_events (tenant_id, seq, event_type, job_id, payload, previous_hash, event_hash, created_at)
    VALUES (p_tenant, seq, p_event_type, p_job_id, payload, head_hash, event_hash, p_created_at);
END $$;

CREATE FUNCTION public.audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION public.audit_events_link_check() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    prev text;
BEGIN
    IF NEW.seq = 1 THEN
        RETURN NEW;
    END IF;
    SELECT event_hash INTO prev FROM audit_events WHERE tenant_id = NEW.tenant_id AND seq = NEW.seq - 1;
    IF prev IS NULL OR prev IS DISTINCT FROM NEW.previous_hash THEN
        RAISE EXCEPTION 'audit chain link broken at tenant % seq %', NEW.tenant_id, NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION public.budget_counter_open(p_scope text, p_id uuid, p_period text, p_start date) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_counters_add(p_tenant uuid, p_key uuid, p_day date, p_month date, p_reserved numeric, p_spent numeric) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_lease_grant(p_lease text, p_tenant uuid, p_key uuid, p_want numeric, p_min numeric, p_share numeric, p_limits jsonb, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_lease_return(p_lease text, p_amount numeric) RETURNS numeric
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_release_stale(p_age interval, p_orphan_age interval) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_reserve(p_job text, p_tenant uuid, p_key uuid, p_amount numeric, p_limits jsonb, p_now timestamp with time zone) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_settle(p_job text, p_cost numeric) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.budget_settle_job(p_job text, p_lease jsonb, p_cost numeric) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.count_input_file_bytes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.kind = 'input' THEN
        UPDATE tenant_file_usage SET input_bytes = input_bytes - OLD.bytes WHERE tenant_id = OLD.tenant_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.kind = 'input' THEN
        INSERT INTO tenant_file_usage AS u (tenant_id, input_bytes) VALUES (NEW.tenant_id, NEW.bytes)
        ON CONFLICT (tenant_id) DO UPDATE SET input_bytes = u.input_bytes + EXCLUDED.input_bytes;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION public.finish_dispatch(p_job jsonb, p_receipt jsonb, p_event_type text, p_prefix text, p_suffix text) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.finish_dispatch_many(p_items jsonb) RETURNS boolean[]
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.notify_catalog_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('ainfera_catalog', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE FUNCTION public.notify_tenants_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('ainfera_tenants', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE FUNCTION public.record_probe(p jsonb) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.try_jsonb(p text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    RETURN p::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

CREATE TABLE public.api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    tenant_id uuid NOT NULL,
    key_hash bytea NOT NULL,
    key_prefix text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    name text,
    expires_at timestamp with time zone,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT api_keys_name_check CHECK (((name IS NULL) OR ((length(name) >= 1) AND (length(name) <= 200)))),
    CONSTRAINT api_keys_settings_check CHECK ((jsonb_typeof(settings) = 'object'::text))
);

CREATE TABLE public.audit_events (
    tenant_id uuid NOT NULL,
    seq bigint NOT NULL,
    event_type text NOT NULL,
    job_id text,
    payload text NOT NULL,
    previous_hash text,
    event_hash text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT audit_events_check CHECK (((seq = 1) = (previous_hash IS NULL))),
    CONSTRAINT audit_events_event_hash_check CHECK ((event_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT audit_events_seq_check CHECK ((seq >= 1))
);

CREATE TABLE public.batches (
    id text NOT NULL,
    tenant_id uuid NOT NULL,
    input_file_id text NOT NULL,
    endpoint text NOT NULL,
    completion_window text NOT NULL,
    metadata jsonb,
    status text NOT NULL,
    errors jsonb,
    output_file_id text,
    error_file_id text,
    total integer NOT NULL,
    completed integer DEFAULT 0 NOT NULL,
    failed integer DEFAULT 0 NOT NULL,
    fed_through integer DEFAULT 0 NOT NULL,
    last_fed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    in_progress_at timestamp with time zone,
    finalizing_at timestamp with time zone,
    completed_at timestamp with time zone,
    failed_at timestamp with time zone,
    expired_at timestamp with time zone,
    cancelling_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    key_id uuid,
    CONSTRAINT batches_status_check CHECK ((status = ANY (ARRAY['validating'::text, 'failed'::text, 'in_progress'::text, 'finalizing'::text, 'completed'::text, 'expired'::text, 'cancelling'::text, 'cancelled'::text]))),
    CONSTRAINT batches_total_check CHECK ((total >= 0))
);

CREATE TABLE public.budget_counters (
    scope text NOT NULL,
    scope_id uuid NOT NULL,
    period text NOT NULL,
    period_start date NOT NULL,
    spent_usd numeric(20,10) DEFAULT 0 NOT NULL,
    reserved_usd numeric(20,10) DEFAULT 0 NOT NULL,
    CONSTRAINT budget_counters_period_check CHECK ((period = ANY (ARRAY['day'::text, 'month'::text]))),
    CONSTRAINT budget_counters_reserved_usd_check CHECK ((reserved_usd >= (0)::numeric)),
    CONSTRAINT budget_counters_scope_check CHECK ((scope = ANY (ARRAY['tenant'::text, 'key'::text]))),
    CONSTRAINT budget_counters_spent_usd_check CHECK ((spent_usd >= (0)::numeric))
);

CREATE TABLE public.budget_reservations (
    job_id text NOT NULL,
    tenant_id uuid NOT NULL,
    key_id uuid,
    day date NOT NULL,
    month date NOT NULL,
    amount_usd numeric(20,10) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    settled_at timestamp with time zone,
    cost_usd numeric(20,10),
    CONSTRAINT budget_reservations_amount_usd_check CHECK ((amount_usd >= (0)::numeric)),
    CONSTRAINT budget_reservations_cost_usd_check CHECK ((cost_usd >= (0)::numeric))
);

CREATE TABLE public.fanout_runs (
    id text NOT NULL,
    trigger text NOT NULL,
    provider_filter text,
    status text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    planned integer NOT NULL,
    plan text[] NOT NULL,
    recorded integer DEFAULT 0 NOT NULL,
    passed integer DEFAULT 0 NOT NULL,
    failed integer DEFAULT 0 NOT NULL,
    skipped integer DEFAULT 0 NOT NULL,
    not_probed jsonb DEFAULT '[]'::jsonb NOT NULL,
    estimated_cost_usd numeric(20,10) DEFAULT 0 NOT NULL,
    guard jsonb,
    decisions jsonb,
    decided_at timestamp with time zone,
    CONSTRAINT fanout_runs_status_check CHECK ((status = ANY (ARRAY['planning'::text, 'running'::text, 'completed'::text]))),
    CONSTRAINT fanout_runs_trigger_check CHECK ((trigger = ANY (ARRAY['schedule'::text, 'manual'::text])))
);

CREATE TABLE public.file_lines (
    file_id text NOT NULL,
    line_no integer NOT NULL,
    custom_id text NOT NULL,
    raw text NOT NULL,
    CONSTRAINT file_lines_line_no_check CHECK ((line_no >= 1))
);

CREATE TABLE public.files (
    id text NOT NULL,
    tenant_id uuid NOT NULL,
    purpose text NOT NULL,
    kind text NOT NULL,
    filename text NOT NULL,
    bytes bigint DEFAULT 0 NOT NULL,
    line_count integer DEFAULT 0 NOT NULL,
    status text NOT NULL,
    batch_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT files_bytes_check CHECK ((bytes >= 0)),
    CONSTRAINT files_kind_check CHECK ((kind = ANY (ARRAY['input'::text, 'output'::text, 'error'::text]))),
    CONSTRAINT files_line_count_check CHECK ((line_count >= 0)),
    CONSTRAINT files_purpose_check CHECK ((purpose = ANY (ARRAY['batch'::text, 'batch_output'::text]))),
    CONSTRAINT files_status_check CHECK ((status = ANY (ARRAY['uploading'::text, 'processed'::text])))
);

CREATE TABLE public.idempotency_keys (
    tenant_id uuid NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    locked_until timestamp with time zone,
    response_status integer,
    response_headers jsonb,
    response_body text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    work_id text
);

CREATE TABLE public.jobs (
    id text NOT NULL,
    tenant_id uuid NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    requested_model text NOT NULL,
    request jsonb,
    response text,
    http_status integer,
    receipt_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    batch_id text,
    line_no integer,
    custom_id text,
    started_at timestamp with time zone,
    attempt integer DEFAULT 0 NOT NULL,
    key_id uuid,
    CONSTRAINT jobs_batch_line CHECK (((batch_id IS NULL) = (line_no IS NULL))),
    CONSTRAINT jobs_kind_check CHECK ((kind = ANY (ARRAY['sync'::text, 'async'::text, 'batch'::text, 'probe'::text]))),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text, 'expired'::text])))
);

CREATE TABLE public.model_probes (
    run_id text NOT NULL,
    model_slug text NOT NULL,
    provider text NOT NULL,
    outcome text NOT NULL,
    status_code integer,
    error_code text,
    reason text,
    latency_ms integer,
    upstream_model text NOT NULL,
    upstream_url text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT model_probes_outcome_check CHECK ((outcome = ANY (ARRAY['passed'::text, 'failed'::text, 'skipped'::text])))
);

CREATE TABLE public.models (
    slug text NOT NULL,
    model_family text NOT NULL,
    provider text NOT NULL,
    provider_model_name text,
    input_usd_per_mtok numeric(14,6),
    output_usd_per_mtok numeric(14,6),
    context_window integer,
    max_output_tokens integer,
    supports_streaming boolean DEFAULT true NOT NULL,
    supports_tools boolean,
    supports_vision boolean,
    aa_index numeric(5,2),
    p50_ttft_ms integer,
    output_tokens_per_s numeric(10,2),
    catalog_status text,
    active boolean DEFAULT true NOT NULL,
    deactivation_reason text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    fast_aa_index numeric(5,2),
    fast_p50_ttft_ms integer,
    fast_output_tokens_per_s numeric(10,2),
    fast_reasoning_effort text,
    reasoning_efforts text[],
    cached_input_usd_per_mtok numeric(14,6),
    cache_write_usd_per_mtok numeric(14,6),
    CONSTRAINT models_cache_write_usd_per_mtok_check CHECK ((cache_write_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT models_cached_input_usd_per_mtok_check CHECK ((cached_input_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT models_context_window_check CHECK ((context_window > 0)),
    CONSTRAINT models_fast_output_tokens_per_s_check CHECK ((fast_output_tokens_per_s > (0)::numeric)),
    CONSTRAINT models_fast_p50_ttft_ms_check CHECK ((fast_p50_ttft_ms >= 0)),
    CONSTRAINT models_input_usd_per_mtok_check CHECK ((input_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT models_max_output_tokens_check CHECK ((max_output_tokens > 0)),
    CONSTRAINT models_output_tokens_per_s_check CHECK ((output_tokens_per_s > (0)::numeric)),
    CONSTRAINT models_output_usd_per_mtok_check CHECK ((output_usd_per_mtok >= (0)::numeric)),
    CONSTRAINT models_p50_ttft_ms_check CHECK ((p50_ttft_ms >= 0))
);

CREATE TABLE public.providers (
    name text NOT NULL,
    display_name text DEFAULT ''::text NOT NULL,
    wire_format text NOT NULL,
    base_url text NOT NULL,
    chat_completions_path text,
    api_key_env text NOT NULL,
    stack text NOT NULL,
    fast_tier boolean DEFAULT false NOT NULL,
    active boolean DEFAULT true NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    serving_region text,
    CONSTRAINT providers_stack_check CHECK ((stack = ANY (ARRAY['us'::text, 'eu'::text, 'china'::text, 'sea'::text]))),
    CONSTRAINT providers_wire_format_check CHECK ((wire_format = ANY (ARRAY['openai-chat'::text, 'anthropic-messages'::text])))
);

CREATE TABLE public.receipts (
    id text NOT NULL,
    job_id text NOT NULL,
    tenant_id uuid NOT NULL,
    status text NOT NULL,
    requested_model text NOT NULL,
    model_slug text,
    provider text,
    upstream_model text,
    input_tokens integer DEFAULT 0 NOT NULL,
    output_tokens integer DEFAULT 0 NOT NULL,
    estimated_cost_usd numeric(20,10),
    cost_usd numeric(20,10) DEFAULT 0 NOT NULL,
    latency_ms integer,
    upstream_latency_ms integer,
    attempts integer DEFAULT 0 NOT NULL,
    error_code text,
    routing jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    signature text,
    signing_kid text,
    reasoning_effort text,
    streamed boolean DEFAULT false NOT NULL,
    usage_estimated boolean DEFAULT false NOT NULL,
    cached_input_tokens integer DEFAULT 0 NOT NULL,
    cache_write_tokens integer DEFAULT 0 NOT NULL,
    reasoning_tokens integer DEFAULT 0 NOT NULL,
    CONSTRAINT receipts_cache_write_tokens_check CHECK ((cache_write_tokens >= 0)),
    CONSTRAINT receipts_cached_input_tokens_check CHECK ((cached_input_tokens >= 0)),
    CONSTRAINT receipts_cached_within_input CHECK (((cached_input_tokens + cache_write_tokens) <= input_tokens)),
    CONSTRAINT receipts_check CHECK (((status = 'succeeded'::text) OR (cost_usd = (0)::numeric) OR streamed)),
    CONSTRAINT receipts_cost_usd_check CHECK ((cost_usd >= (0)::numeric)),
    CONSTRAINT receipts_input_tokens_check CHECK ((input_tokens >= 0)),
    CONSTRAINT receipts_output_tokens_check CHECK ((output_tokens >= 0)),
    CONSTRAINT receipts_reasoning_tokens_check CHECK ((reasoning_tokens >= 0)),
    CONSTRAINT receipts_reasoning_within_output CHECK ((reasoning_tokens <= output_tokens)),
    CONSTRAINT receipts_status_check CHECK ((status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text])))
);

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.tenant_file_usage (
    tenant_id uuid NOT NULL,
    input_bytes bigint DEFAULT 0 NOT NULL,
    CONSTRAINT tenant_file_usage_input_bytes_check CHECK ((input_bytes >= 0))
);

CREATE TABLE public.tenants (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    spend_policy jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tenants_spend_policy_check CHECK ((jsonb_typeof(spend_policy) = 'object'::text))
);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_events
    ADD CONSTRAINT audit_events_event_hash_key UNIQUE (event_hash);

ALTER TABLE ONLY public.audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, seq);

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.budget_counters
    ADD CONSTRAINT budget_counters_pkey PRIMARY KEY (scope, scope_id, period, period_start);

ALTER TABLE ONLY public.budget_reservations
    ADD CONSTRAINT budget_reservations_pkey PRIMARY KEY (job_id);

ALTER TABLE ONLY public.fanout_runs
    ADD CONSTRAINT fanout_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.file_lines
    ADD CONSTRAINT file_lines_file_id_custom_id_key UNIQUE (file_id, custom_id);

ALTER TABLE ONLY public.file_lines
    ADD CONSTRAINT file_lines_pkey PRIMARY KEY (file_id, line_no);

ALTER TABLE ONLY public.files
    ADD CONSTRAINT files_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, key);

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.model_probes
    ADD CONSTRAINT model_probes_pkey PRIMARY KEY (run_id, model_slug);

ALTER TABLE ONLY public.models
    ADD CONSTRAINT models_pkey PRIMARY KEY (slug);

ALTER TABLE ONLY public.providers
    ADD CONSTRAINT providers_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.receipts
    ADD CONSTRAINT receipts_job_id_key UNIQUE (job_id);

ALTER TABLE ONLY public.receipts
    ADD CONSTRAINT receipts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.tenant_file_usage
    ADD CONSTRAINT tenant_file_usage_pkey PRIMARY KEY (tenant_id);

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

CREATE INDEX api_keys_tenant_idx ON public.api_keys USING btree (tenant_id);

CREATE UNIQUE INDEX audit_events_job_idx ON public.audit_events USING btree (job_id) WHERE (job_id IS NOT NULL);

CREATE UNIQUE INDEX audit_events_no_fork_idx ON public.audit_events USING btree (tenant_id, previous_hash);

CREATE INDEX batches_open_idx ON public.batches USING btree (created_at) WHERE (status = ANY (ARRAY['validating'::text, 'in_progress'::text, 'finalizing'::text, 'cancelling'::text]));

CREATE INDEX batches_tenant_created_idx ON public.batches USING btree (tenant_id, created_at DESC, id DESC);

CREATE INDEX budget_reservations_key_idx ON public.budget_reservations USING btree (key_id, day) WHERE (key_id IS NOT NULL);

CREATE INDEX budget_reservations_open_idx ON public.budget_reservations USING btree (created_at) WHERE (settled_at IS NULL);

CREATE INDEX fanout_runs_started_idx ON public.fanout_runs USING btree (started_at DESC);

CREATE INDEX files_tenant_created_idx ON public.files USING btree (tenant_id, created_at DESC);

CREATE INDEX idempotency_keys_created_idx ON public.idempotency_keys USING btree (created_at);

CREATE UNIQUE INDEX jobs_batch_line_idx ON public.jobs USING btree (batch_id, line_no) WHERE (batch_id IS NOT NULL);

CREATE INDEX jobs_batch_open_idx ON public.jobs USING btree (batch_id) WHERE ((batch_id IS NOT NULL) AND (status = ANY (ARRAY['queued'::text, 'running'::text])));

CREATE INDEX jobs_open_idx ON public.jobs USING btree (created_at) WHERE (status = ANY (ARRAY['queued'::text, 'running'::text]));

CREATE INDEX jobs_tenant_created_idx ON public.jobs USING btree (tenant_id, created_at);

CREATE INDEX model_probes_model_idx ON public.model_probes USING btree (model_slug, created_at DESC);

CREATE INDEX models_provider_idx ON public.models USING btree (provider);

CREATE INDEX receipts_created_brin ON public.receipts USING brin (created_at);

CREATE INDEX receipts_model_created_idx ON public.receipts USING btree (model_slug, created_at) WHERE (status = 'succeeded'::text);

CREATE INDEX receipts_tenant_created_idx ON public.receipts USING btree (tenant_id, created_at);

CREATE INDEX receipts_tenant_model_created_idx ON public.receipts USING btree (tenant_id, model_slug, created_at);

CREATE TRIGGER api_keys_changed AFTER INSERT OR DELETE OR UPDATE ON public.api_keys FOR EACH STATEMENT EXECUTE FUNCTION public.notify_tenants_changed();

CREATE TRIGGER audit_events_link BEFORE INSERT ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.audit_events_link_check();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events FOR EACH STATEMENT EXECUTE FUNCTION public.audit_events_append_only();

CREATE TRIGGER audit_events_no_update BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.audit_events_append_only();

CREATE TRIGGER files_count_input_bytes AFTER INSERT OR DELETE OR UPDATE OF tenant_id, kind, bytes ON public.files FOR EACH ROW EXECUTE FUNCTION public.count_input_file_bytes();

CREATE TRIGGER models_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.models FOR EACH STATEMENT EXECUTE FUNCTION public.notify_catalog_changed();

CREATE TRIGGER providers_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.providers FOR EACH STATEMENT EXECUTE FUNCTION public.notify_catalog_changed();

CREATE TRIGGER tenants_changed AFTER INSERT OR DELETE OR UPDATE ON public.tenants FOR EACH STATEMENT EXECUTE FUNCTION public.notify_tenants_changed();

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.audit_events
    ADD CONSTRAINT audit_events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_error_file_id_fkey FOREIGN KEY (error_file_id) REFERENCES public.files(id);

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_input_file_id_fkey FOREIGN KEY (input_file_id) REFERENCES public.files(id);

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_output_file_id_fkey FOREIGN KEY (output_file_id) REFERENCES public.files(id);

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.file_lines
    ADD CONSTRAINT file_lines_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.files(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.files
    ADD CONSTRAINT files_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.batches(id);

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.model_probes
    ADD CONSTRAINT model_probes_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.fanout_runs(id);

ALTER TABLE ONLY public.models
    ADD CONSTRAINT models_provider_fkey FOREIGN KEY (provider) REFERENCES public.providers(name);

ALTER TABLE ONLY public.receipts
    ADD CONSTRAINT receipts_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id);

ALTER TABLE ONLY public.receipts
    ADD CONSTRAINT receipts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);

ALTER TABLE ONLY public.tenant_file_usage
    ADD CONSTRAINT tenant_file_usage_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants(id);
