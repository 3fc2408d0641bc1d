# MLManager — `make run` starts it, `make test` checks everything (CI calls it through .ci/run).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install run test lint typecheck checks test-sqlite test-postgres browser lock bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
