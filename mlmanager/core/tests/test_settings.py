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


def test_redis_url_gives_every_process_a_shared_cache_and_channel_layer(tmp_path: Path) -> None:
    """With REDIS_URL (scale-out) the cache and the live-update channel layer are the real
    Redis: a value one process caches, another reads."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLMANAGER_")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MLMANAGER_DATA_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:6379/8",
    }
    program = (
        "import django, sys; django.setup(); "
        "from django.conf import settings; from django.core.cache import cache; "
        "print(settings.CACHES['default']['BACKEND'], "
        "settings.CHANNEL_LAYERS['default']['BACKEND']); "
        "cache.set('shared', sys.argv[1]) if sys.argv[1] != '-' else print(cache.get('shared'))"
    )
    written = subprocess.run(
        [sys.executable, "-c", program, "from-one"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    read = subprocess.run(
        [sys.executable, "-c", program, "-"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert written.stdout.split() == [
        "django_redis.cache.RedisCache",
        "channels_redis.core.RedisChannelLayer",
    ]
    assert read.stdout.split()[-1] == "from-one"


def test_production_serves_collected_static_files_under_hashed_names(tmp_path: Path) -> None:
    """`mlmanager collectstatic` then the WSGI app (WhiteNoise) serves the manifest's hashed
    files with a long cache life, as README's production section says."""
    env = _production_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    program = (
        "import django; django.setup(); "
        "from django.templatetags.static import static; from django.test import Client; "
        "url = static('core/app.css'); "
        "response = Client(HTTP_HOST='ml.example.com', HTTP_X_FORWARDED_PROTO='https').get(url); "
        "print(url, response.status_code, response.headers.get('Cache-Control'))"
    )
    served = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    url, status, cache = served.stdout.split(maxsplit=2)
    assert (
        url.startswith("/static/core/app.")
        and url.endswith(".css")
        and url != "/static/core/app.css"
    )
    assert status == "200"
    assert "max-age=315360000" in cache
