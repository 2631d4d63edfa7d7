-- The first schema: catalog, tenants and keys, jobs, receipts and the audit chain.
-- Forward-only: later changes go in new numbered files, never edits to this one.

-- Catalog -----------------------------------------------------------------------------

CREATE TABLE providers (
    name                  text PRIMARY KEY,
    display_name          text NOT NULL DEFAULT '',
    wire_format           text NOT NULL CHECK (wire_format IN ('openai-chat', 'anthropic-messages')),
    base_url              text NOT NULL,
    chat_completions_path text,               -- NULL: the wire format's default path
    api_key_env           text NOT NULL,      -- the NAME of the variable holding the key, never the key
    stack                 text NOT NULL CHECK (stack IN ('us', 'eu', 'china', 'sea')),
    fast_tier             boolean NOT NULL DEFAULT false,
    active                boolean NOT NULL DEFAULT true,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE models (
    slug                  text PRIMARY KEY,
    model_family          text NOT NULL,
    provider              text NOT NULL REFERENCES providers (name),
    provider_model_name   text,               -- NULL: send the slug upstream
    input_usd_per_mtok    numeric(14, 6) CHECK (input_usd_per_mtok >= 0),
    output_usd_per_mtok   numeric(14, 6) CHECK (output_usd_per_mtok >= 0),
    context_window        integer CHECK (context_window > 0),
    max_output_tokens     integer CHECK (max_output_tokens > 0),
    supports_streaming    boolean NOT NULL DEFAULT true,
    supports_tools        boolean,
    supports_vision       boolean,
    aa_index              numeric(5, 2),
    p50_ttft_ms           integer CHECK (p50_ttft_ms >= 0),
    output_tokens_per_s   numeric(10, 2) CHECK (output_tokens_per_s > 0),
    catalog_status        text,
    active                boolean NOT NULL DEFAULT true,
    deactivation_reason   text,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX models_provider_idx ON models (provider);

-- Any change to the catalog, by any client, tells every process to reload its cache.
CREATE FUNCTION notify_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ainfera_catalog', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER providers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON providers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();

-- Tenants and API keys ----------------------------------------------------------------

CREATE TABLE tenants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL,
    spend_policy  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(spend_policy) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION notify_tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ainfera_tenants', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_changed AFTER UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenants_changed();

-- The system's own chain (catalog decisions) lives under this reserved tenant.
INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000000', 'system');

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    key_hash      bytea NOT NULL UNIQUE,      -- SHA-256 of the key; the key itself is never stored
    key_prefix    text NOT NULL,              -- first characters, to recognise a key in a list
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenants_changed();

-- Jobs and receipts -------------------------------------------------------------------

CREATE TABLE jobs (
    id              text PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    kind            text NOT NULL CHECK (kind IN ('sync', 'async', 'batch', 'probe')),
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired')),
    requested_model text NOT NULL,
    request         jsonb,                    -- kept only for work accepted before it ran (async, batch)
    response        jsonb,                    -- the body the caller gets (success or error envelope)
    http_status     integer,
    receipt_id      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant_id, created_at);

CREATE TABLE receipts (
    id                  text PRIMARY KEY,
    job_id              text NOT NULL UNIQUE REFERENCES jobs (id),   -- one receipt per job, whatever happens
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    status              text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    requested_model     text NOT NULL,
    model_slug          text,                 -- the canonical slug that served (NULL if none was reached)
    provider            text,
    upstream_model      text,                 -- what was sent upstream; never shown as the model
    input_tokens        integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens       integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    estimated_cost_usd  numeric(20, 10),
    cost_usd            numeric(20, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    latency_ms          integer,
    upstream_latency_ms integer,
    attempts            integer NOT NULL DEFAULT 0,
    error_code          text,
    routing             jsonb,                -- router summary and fallbacks, for explanations
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'succeeded' OR cost_usd = 0)    -- a failed call is never charged
);
CREATE INDEX receipts_tenant_created_idx ON receipts (tenant_id, created_at);
CREATE INDEX receipts_model_created_idx ON receipts (model_slug, created_at) WHERE status = 'succeeded';

-- Audit chain -------------------------------------------------------------------------
-- event_hash = sha256_hex(previous_hash_or_empty || payload), payload = canonical JSON text
-- exactly as hashed. Append-only: the database refuses UPDATE, DELETE and TRUNCATE.

CREATE TABLE audit_events (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    seq           bigint NOT NULL CHECK (seq >= 1),
    event_type    text NOT NULL,
    job_id        text,
    payload       text NOT NULL,
    previous_hash text,
    event_hash    text NOT NULL UNIQUE CHECK (event_hash ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    CHECK ((seq = 1) = (previous_hash IS NULL))
);
-- Two events can never follow the same event: no forks.
CREATE UNIQUE INDEX audit_events_no_fork_idx ON audit_events (tenant_id, previous_hash);
-- One audit event per job.
CREATE UNIQUE INDEX audit_events_job_idx ON audit_events (job_id) WHERE job_id IS NOT NULL;

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Each new event must link to the event right before it in its tenant's chain.
CREATE FUNCTION audit_events_link_check() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER audit_events_link BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_link_check();

-- Append one event to a tenant's chain. The caller sends the canonical JSON of the payload
-- split around the value of "seq" (prefix ends with '"seq":'), because only the database knows
-- the next seq; the hash rule is the one in shared/audit/chain.py:
--   event_hash = sha256_hex(previous event_hash (or '') || payload, as UTF-8)
-- A transaction-scoped advisory lock per tenant serialises appenders; the head is read by a
-- separate statement after the lock is granted, so it is never stale.
CREATE FUNCTION audit_append(
    p_tenant uuid, p_event_type text, p_job_id text, p_prefix text, p_suffix text, p_created_at timestamptz,
    OUT seq bigint, OUT event_hash text)
LANGUAGE plpgsql VOLATILE AS $$
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

-- Finish a dispatch job in one round trip: the job outcome, its receipt and its audit event.
-- Returns false (and writes nothing) when the job was already finished: a second delivery.
CREATE FUNCTION finish_dispatch(
    p_job jsonb, p_receipt jsonb, p_event_type text, p_prefix text, p_suffix text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j   jobs;
    r   receipts;
    won text;
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
    RETURNING jobs.id INTO won;
    IF won IS NULL THEN
        RETURN false;
    END IF;
    r := jsonb_populate_record(NULL::receipts, p_receipt);
    INSERT INTO receipts VALUES (r.*);
    PERFORM audit_append(j.tenant_id, p_event_type, j.id, p_prefix, p_suffix, j.finished_at);
    RETURN true;
END $$;
