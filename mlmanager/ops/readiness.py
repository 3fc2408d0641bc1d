"""Readiness: can this web process serve requests now? Each check talks to one dependency
(the database, the job broker, file storage, Redis) and gives up within a couple of seconds,
so a load balancer's probe gets an answer before its own timeout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from mlmanager.core import storage

logger = logging.getLogger(__name__)

TIMEOUT_S = 2.0
ERROR_MAX_CHARS = 200


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]  # name: "ok…" or the short error text


def readiness() -> Readiness:
    checks: dict[str, Callable[[], str]] = {
        "database": check_database,
        "broker": check_broker,
        "storage": check_storage,
    }
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    results: dict[str, str] = {}
    ready = True
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as error:  # any failure makes the process not ready, never a 500
            results[name] = _short(error)
            logger.warning("readiness check %s failed: %s", name, results[name])
            ready = False
    return Readiness(ready=ready, checks=results)


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_broker() -> str:
    if settings.MLMANAGER_TASKS != "celery":
        return "ok (database queue)"  # the queue is a table: the database check covers it
    from mlmanager.jobs.celery_app import app  # only this mode configures Celery

    # One attempt (max_retries=0: kombu would otherwise sleep 2 s before retrying), bounded by
    # the connect timeout; the URL is passed so the check does not depend on the backend having
    # configured the app already.
    with app.connection_for_write(
        url=settings.CELERY_BROKER_URL, connect_timeout=TIMEOUT_S
    ) as broker:
        broker.ensure_connection(max_retries=0, timeout=TIMEOUT_S)
    return "ok"


def check_storage() -> str:
    """Writes and removes a small file, in the data folder or the bucket alike."""
    storage.check_writable(timeout_s=TIMEOUT_S)
    return "ok"


def check_redis() -> str:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _short(error: BaseException) -> str:
    """The error's type and the first line of its message: enough to act on, short enough for
    a probe's answer (database errors add lines of hints and details)."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text[:ERROR_MAX_CHARS]
