-- Cached input tokens and cache writes are priced apart from other input tokens.

-- USD per million tokens, like the other prices. NULL: no published price; such tokens are billed
-- at the model's input price.
ALTER TABLE models
    ADD COLUMN cached_input_usd_per_mtok numeric(14, 6) CHECK (cached_input_usd_per_mtok >= 0),
    ADD COLUMN cache_write_usd_per_mtok  numeric(14, 6) CHECK (cache_write_usd_per_mtok >= 0);

-- The split of a receipt's tokens. `input_tokens` stays the whole prompt (cache reads and writes
-- included); `reasoning_tokens` are part of `output_tokens`. Receipts written before this
-- migration have 0 in each, which is also what their signed JSON says (the fields are left out).
ALTER TABLE receipts
    ADD COLUMN cached_input_tokens integer NOT NULL DEFAULT 0 CHECK (cached_input_tokens >= 0),
    ADD COLUMN cache_write_tokens  integer NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    ADD COLUMN reasoning_tokens    integer NOT NULL DEFAULT 0 CHECK (reasoning_tokens >= 0),
    ADD CONSTRAINT receipts_cached_within_input CHECK (cached_input_tokens + cache_write_tokens <= input_tokens),
    ADD CONSTRAINT receipts_reasoning_within_output CHECK (reasoning_tokens <= output_tokens);
