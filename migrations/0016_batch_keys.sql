-- A batch records the API key that created it, and its lines' jobs carry that key, so a batch
-- line is held to what its key allows when it runs: the key's budgets, its batch rate limits, its
-- model allowlist as it is then, and its revocation (see docs/decisions.md, "Batch lines answer
-- to their key"). NULL: a batch from before keys were recorded.
ALTER TABLE batches ADD COLUMN IF NOT EXISTS key_id uuid;
