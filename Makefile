# The two commands a newcomer needs: `make up` (the whole system, in the foreground)
# and `make test` (installs what the tests need, then runs them all).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test install services lint unit integration e2e bench schema clean

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

test: services lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

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
