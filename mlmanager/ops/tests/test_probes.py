"""/healthz and /readyz as a load balancer calls them: no login, no cookie, plain HTTP."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_with_the_embedded_defaults(client, settings) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok (database queue)", "storage": "ok"},
    }
    # The storage probe leaves nothing behind.
    assert list(Path(settings.MEDIA_ROOT).iterdir()) == []


def test_readyz_fails_when_storage_cannot_be_written(client, settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "not-mounted" / "media"  # its parent does not exist
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"].startswith("FileNotFoundError: ")
    assert not (tmp_path / "not-mounted").exists()


def test_readyz_fails_when_the_database_does_not_answer(client, monkeypatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused\nIs the server running?")

    monkeypatch.setattr("mlmanager.ops.readiness.connection.cursor", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "OperationalError: connection refused",
        "broker": "ok (database queue)",
        "storage": "ok",
    }


def test_readyz_connects_to_the_celery_broker(client, settings) -> None:
    settings.MLMANAGER_TASKS = "celery"
    settings.CELERY_BROKER_URL = "memory://"  # kombu's in-process transport: a real connection
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


def test_readyz_fails_fast_when_the_celery_broker_is_down(client, settings) -> None:
    settings.MLMANAGER_TASKS = "celery"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker.startswith("OperationalError: ")
    assert "refused" in broker.lower()


def test_readyz_pings_redis_when_configured(client, settings, monkeypatch) -> None:
    pinged: list[str] = []

    def ping(self: redis.Redis) -> bool:  # the Redis server is the outside service
        pinged.append(self.connection_pool.connection_kwargs["host"])
        return True

    monkeypatch.setattr(redis.Redis, "ping", ping)
    settings.REDIS_URL = "redis://cache.internal:6379/1"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"
    assert pinged == ["cache.internal"]


def test_readyz_fails_when_redis_is_down(client, settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("ConnectionError: ")


def test_no_redis_check_without_redis(client, settings) -> None:
    settings.REDIS_URL = ""
    assert "redis" not in client.get("/readyz").json()["checks"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_are_not_redirected_to_https(client, settings, path: str) -> None:
    settings.SECURE_SSL_REDIRECT = True  # as in production; SECURE_REDIRECT_EXEMPT as set
    assert client.get(path).status_code == 200
    # Everything else still is.
    assert client.get("/accounts/login/").status_code == 301


def test_probes_obey_allowed_hosts(client, settings) -> None:
    settings.ALLOWED_HOSTS = ["example.com"]
    assert client.get("/healthz", HTTP_HOST="example.com").status_code == 200
    assert client.get("/healthz", HTTP_HOST="10.1.2.3").status_code == 400


def test_probes_refuse_writes(client) -> None:
    assert client.post("/healthz").status_code == 405
