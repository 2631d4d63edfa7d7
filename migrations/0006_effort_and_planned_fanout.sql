-- Reasoning effort as a routing choice, and fanout runs planned by the workers that probe.

-- A reasoning model's fast variant (its lowest-effort or non-reasoning setting, as Artificial
-- Analysis measured it) and the `reasoning_effort` value that reaches it at this provider
-- (NULL: the provider documents no such value, so the router never asks for it).
ALTER TABLE models
    ADD COLUMN fast_aa_index             numeric(5, 2),
    ADD COLUMN fast_p50_ttft_ms          integer CHECK (fast_p50_ttft_ms >= 0),
    ADD COLUMN fast_output_tokens_per_s  numeric(10, 2) CHECK (fast_output_tokens_per_s > 0),
    ADD COLUMN fast_reasoning_effort     text,
    ADD COLUMN reasoning_efforts         text[];   -- the values this provider accepts for the model

-- The reasoning effort sent upstream (the caller's, or the one ainfera-auto chose), so learned
-- latencies can be kept, and rebuilt, per (model, effort).
ALTER TABLE receipts ADD COLUMN reasoning_effort text;

-- A run is created by whoever asks for it (CLI, admin API, schedule) in state 'planning'; a probe
-- worker, which knows which providers it can call, plans it and moves it to 'running'.
ALTER TABLE fanout_runs DROP CONSTRAINT fanout_runs_status_check;
ALTER TABLE fanout_runs ADD CONSTRAINT fanout_runs_status_check
    CHECK (status IN ('planning', 'running', 'completed'));
