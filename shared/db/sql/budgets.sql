-- Budget reservations and counters (migration 0014 holds the functions).

-- name: reserve
SELECT budget_reserve($1, $2, $3, $4, $5, $6);

-- name: settle
SELECT budget_settle($1, $2);

-- name: release_stale
SELECT budget_release_stale($1, $2);

-- name: counters
-- A tenant's (and key's) counters for the periods of `now`, to read what is left.
SELECT scope, period, spent_usd, reserved_usd
  FROM budget_counters
 WHERE ((scope = 'tenant' AND scope_id = $1) OR (scope = 'key' AND scope_id = $2))
   AND ((period = 'day' AND period_start = ($3 AT TIME ZONE 'UTC')::date)
     OR (period = 'month' AND period_start = date_trunc('month', $3 AT TIME ZONE 'UTC')::date));

-- name: reservation
SELECT job_id, tenant_id, key_id, amount_usd, settled_at, cost_usd FROM budget_reservations WHERE job_id = $1;

-- name: lease_grant
SELECT budget_lease_grant($1, $2, $3, $4, $5, $6, $7, $8);

-- name: lease_return
SELECT budget_lease_return($1, $2);
