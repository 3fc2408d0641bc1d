"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import api_client_for, member


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "uploads-in-progress"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The prediction log is written within each request, so tests see it at once.
    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 0
    # No request rate limits: the suite and the API fuzzer call far faster than any client
    # should, and query counts stay those of the views. Throttle tests set the rates they test.
    settings.MLMANAGER_API_RATE = None
    settings.MLMANAGER_PREDICT_RATE = None
    settings.MLMANAGER_TOKEN_RATE = None
    settings.MLMANAGER_ACCOUNT_EMAIL_RATE = None
    settings.MLMANAGER_ACCOUNT_ADDRESS_RATE = None
    # The platform log's writer thread would write warnings of any test on its own connection,
    # past the test's transaction (rows left behind; on SQLite waiting for the test's lock):
    # off, except in mlmanager/ops/tests/test_platform_log.py.
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = False
    # A developer's MLFLOW_TRACKING_URI must not receive the suite's runs; the MLflow tests
    # (machines/tests/test_mlflow.py) set their own server.
    settings.MLFLOW_TRACKING_URI = ""


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> None:
    """No loaded model version outlives its test: a test database rolled back hands the same
    ids out again, so a version cached by one test would answer for another's."""
    from mlmanager.predictions import serving

    serving.cache.clear()


@pytest.fixture(autouse=True)
def _fresh_rule_caches() -> None:
    """Nor do the alert rules' per-process caches (the ingest's index is keyed by team and
    the rules' newest change, both of which a rolled-back or time-frozen test may repeat)."""
    from mlmanager.monitoring.services import evaluation

    evaluation.rule_caches_forget()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On SQLite, the test database is a file (one per session), not Django's in-memory one.

    Live-server tests (tests/browser, mlmanager/tests/test_client.py) use the database from
    three threads at once: the test, the server and the job worker. In-memory test databases
    use SQLite's shared cache, where a read that meets another connection's write fails at once
    ("database schema is locked") instead of waiting for the busy timeout; a file in WAL mode
    (settings' init_command) lets readers read and writers wait, as the embedded default does
    in production.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp("database")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


@pytest.fixture
def owner(db: None) -> Any:
    return member("owner")


@pytest.fixture
def api(owner: Any) -> APIClient:
    """An API client authenticated with a bearer token of `owner`."""
    return api_client_for(owner)


@pytest.fixture
def run_jobs(transactional_db: None) -> Callable[[], None]:
    """Runs every queued job to completion with the real worker (batch mode).

    Tests that use it commit for real (transactional_db): the worker, like any real one,
    closes a connection it finds inside an open transaction, which would end a wrapping test
    transaction. Enqueueing then happens on commit, exactly as in production.
    """

    def run() -> None:
        call_command("worker", "--batch", "--interval", "0", verbosity=0)

    return run


@pytest.fixture
def committing(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with committing(): ...` runs on_commit callbacks (enqueueing) at the end of the block,
    as a real commit would; tests otherwise roll back and never commit."""

    def context() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return context


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, content: bytes | str, encoding: str = "utf-8") -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
        return path

    return write
