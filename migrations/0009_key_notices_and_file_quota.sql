-- New tenants and keys notify too: every process caches unknown keys briefly, and a key created
-- after its token was refused must work at once, not when that cache entry expires.
CREATE OR REPLACE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenants_changed();
CREATE OR REPLACE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenants_changed();

-- What each tenant's input files take, all together (uploads in progress count what they have
-- reserved so far). A trigger keeps it equal to the sum of `files.bytes` however a row changes,
-- so the quota check is one locked row, not a sum over the tenant's files.
CREATE TABLE tenant_file_usage (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id),
    input_bytes  bigint NOT NULL DEFAULT 0 CHECK (input_bytes >= 0)
);

CREATE FUNCTION count_input_file_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
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
-- The trigger first: its lock on `files` holds writers off until the totals below are in.
CREATE TRIGGER files_count_input_bytes AFTER INSERT OR DELETE OR UPDATE OF tenant_id, kind, bytes ON files
    FOR EACH ROW EXECUTE FUNCTION count_input_file_bytes();
INSERT INTO tenant_file_usage (tenant_id, input_bytes)
SELECT tenant_id, sum(bytes) FROM files WHERE kind = 'input' GROUP BY tenant_id;
