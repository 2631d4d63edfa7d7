-- The operator console (`/console`) reads receipts of every tenant in a recent window (today's
-- spend, the last hour's errors and decisions). Receipts are appended in time order, so a BRIN
-- index on created_at answers those range scans for a few pages of index and almost no write cost.
CREATE INDEX IF NOT EXISTS receipts_created_brin ON receipts USING brin (created_at);
