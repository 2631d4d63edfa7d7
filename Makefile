# The two commands a newcomer needs: `make up` (the whole system, in the foreground)
# and `make test` (installs what the tests need, then runs them all).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test test-pgbouncer test-redis-cluster tools install services lint unit integration e2e bench schema clean

# The queue, budget, rate-limit and exactly-once suites again, with the gateway's and workers'
# pools going through PgBouncer in transaction pooling mode (started by the tests).
PGBOUNCER_TESTS := $(addprefix tests/integration/,test_through_pgbouncer.py test_budgets.py \
	test_budget_leases.py test_rate_limits.py test_queue_enqueue.py test_queue_notify.py \
	test_queue_processes.py test_queue_worker.py test_sync_dispatch.py test_batches.py test_api_keys.py \
	test_exactly_once.py test_key_directory.py test_dispatch_idempotency.py test_usage.py)

# The queue, budget, rate-limit and exactly-once suites again, on a Redis Cluster (three masters
# with a replica each, started by the tests from the machine's redis-server) instead of one Redis.
REDIS_CLUSTER_TESTS := $(addprefix tests/integration/,test_queue_enqueue.py test_queue_notify.py \
	test_queue_processes.py test_queue_worker.py test_budgets.py test_budget_leases.py test_rate_limits.py \
	test_sync_dispatch.py test_batches.py test_exactly_once.py test_dispatch_idempotency.py test_api_keys.py)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

services: install
	$(BIN)/ainfera-dispatch services

up: services
	$(BIN)/ainfera-dispatch up

test: services lint tools
	$(BIN)/python -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory test-pgbouncer
	$(MAKE) --no-print-directory test-redis-cluster

# The distribution's packages the suite drives: PgBouncer, and Chromium for the console's browser test.
tools: install
	$(BIN)/ainfera-dispatch services --tool pgbouncer --tool chromium --tool chromium-driver

test-pgbouncer: services tools
	AINFERA_TEST_PGBOUNCER=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(PGBOUNCER_TESTS)

test-redis-cluster: services
	AINFERA_TEST_REDIS_CLUSTER=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(REDIS_CLUSTER_TESTS)

lint: install
	$(BIN)/ruff check shared gateway worker tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: services
	$(BIN)/python -m pytest -q tests/integration

e2e: services
	$(BIN)/python -m pytest -q tests/e2e

schema: services  # rewrite migrations/schema.sql after adding a migration
	$(BIN)/ainfera-dispatch schema

bench: services
	$(BIN)/python bench/sync_latency.py
	$(BIN)/python bench/queue_roundtrip.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
