-- API keys a tenant's admin manages: a name, an expiry, and the key's own settings (a model
-- allowlist and limits that can only tighten the tenant's), validated by
-- shared/auth/key_settings.py when they are set. Existing keys: no name, no expiry, no settings.
ALTER TABLE api_keys
    ADD COLUMN name text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object');
