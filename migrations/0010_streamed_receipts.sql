-- Streamed calls. A caller who disconnects mid-stream ends the job `cancelled`, and that call is
-- billed for what was generated before the upstream call was stopped; so is a stream the provider
-- broke off after part of the answer was relayed. Receipts say whether the answer was streamed
-- and whether its usage was counted by us because the provider reported none.
ALTER TABLE receipts
    ADD COLUMN streamed boolean NOT NULL DEFAULT false,
    ADD COLUMN usage_estimated boolean NOT NULL DEFAULT false;

ALTER TABLE receipts DROP CONSTRAINT receipts_status_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_status_check
    CHECK (status IN ('succeeded', 'failed', 'cancelled'));

-- Only a succeeded call, or one whose stream delivered part of an answer, costs anything.
ALTER TABLE receipts DROP CONSTRAINT receipts_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_check
    CHECK (status = 'succeeded' OR cost_usd = 0 OR streamed);
