"""Production settings: no secret defaults, and Django's deployment checklist passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigurationError, read_environment

ROOT = Path(__file__).resolve().parents[3]


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLMANAGER_") and key != "DATABASE_URL"
    }
    env.update(
        MLMANAGER_ENV="production",
        MLMANAGER_SECRET_KEY="x" * 20 + "-production-secret-" + "y" * 30,
        MLMANAGER_ALLOWED_HOSTS="ml.example.com",
        MLMANAGER_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)
    return env


def test_production_passes_check_deploy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["MLMANAGER_SECRET_KEY", "MLMANAGER_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(missing: str, tmp_path: Path, monkeypatch) -> None:
    for key, value in _production_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        read_environment()


def test_development_generates_and_keeps_a_key_outside_the_code(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLMANAGER_SECRET_KEY", raising=False)
    monkeypatch.setenv("MLMANAGER_ENV", "development")
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    first = read_environment().secret_key
    assert len(first) >= 50
    assert (tmp_path / "secret_key").read_text() == first
    assert read_environment().secret_key == first
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


@pytest.mark.parametrize(
    ("variable", "value"), [("MLMANAGER_MAX_UPLOAD_MB", "lots"), ("MLMANAGER_SIGNUP_OPEN", "maybe")]
)
def test_bad_values_name_the_variable(variable, value, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLMANAGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        read_environment()
