"""The production settings, loaded in a fresh process as `mlmanager web` would load them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigurationError, read_environment

ROOT = Path(__file__).resolve().parents[3]


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLMANAGER_", "PROMETHEUS_")) and key != "DATABASE_URL"
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MLMANAGER_ENV="production",
        MLMANAGER_SECRET_KEY="k" * 30 + "-a-production-secret-key-" + "z" * 30,
        MLMANAGER_ALLOWED_HOSTS="example.com",
        MLMANAGER_DATA_DIR=str(tmp_path),
        **extra,
    )
    return environment


# `manage.py check --deploy` is run by mlmanager/core/tests/test_settings.py.


# Requests over plain HTTP, as a load balancer's probe or Prometheus sends them to one server.
PROBE = """
import json
import django
from django.test import Client

django.setup()
client = Client(HTTP_HOST="example.com")
print(json.dumps({path: client.get(path).status_code for path in (
    "/healthz", "/metrics", "/accounts/login/"
)}))
"""


def test_probes_over_plain_http_in_production(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=_production(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    # Not redirected to https; /metrics hidden without a token; the rest still redirected.
    assert statuses == {"/healthz": 200, "/metrics": 404, "/accounts/login/": 301}


def test_the_metrics_token_is_read_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLMANAGER_METRICS_TOKEN", "  scrape-me  ")
    assert read_environment().metrics_token == "scrape-me"
    monkeypatch.delenv("MLMANAGER_METRICS_TOKEN")
    assert read_environment().metrics_token == ""


@pytest.mark.parametrize("value", ["xml", "JSONL"])
def test_an_unknown_log_format_names_the_variable(monkeypatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLMANAGER_LOG_FORMAT", value)
    with pytest.raises(ConfigurationError, match="MLMANAGER_LOG_FORMAT"):
        read_environment()
