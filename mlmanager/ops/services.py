"""The platform log's writes: the handler's batches (ops.platform_log) and retention."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from mlmanager.ops.models import PlatformLogEntry

RETENTION_BATCH = 5000


def platform_log_write(*, entries: Sequence[Mapping[str, Any]]) -> int:
    """Insert log entries (the values `PlatformLogHandler` made); returns how many were written.

    One statement for the batch; when the database refuses it (a value it cannot store), entry
    by entry, each in its own savepoint, so one bad entry never loses the others. No
    `full_clean()`: the handler made every value within its column's bounds, and validating
    each entry would cost the writer more than the insert.
    """
    rows = [PlatformLogEntry(**entry) for entry in entries]
    try:
        with transaction.atomic():
            PlatformLogEntry.objects.bulk_create(rows)
        return len(rows)
    except (DataError, IntegrityError):
        pass
    written = 0
    with transaction.atomic():
        for entry in entries:
            try:
                with transaction.atomic():
                    PlatformLogEntry.objects.create(**entry)
                written += 1
            except (DataError, IntegrityError):
                continue
    return written


def platform_log_table_exists() -> bool:
    """False before `migrate` created the table (the handler then drops what it holds)."""
    return PlatformLogEntry._meta.db_table in connection.introspection.table_names()


def platform_log_retention_interval_s() -> float:
    return 3600.0


def platform_log_delete_expired(
    *, now: datetime | None = None, batch_size: int = RETENTION_BATCH
) -> int:
    """Delete entries older than MLMANAGER_PLATFORM_LOG_RETENTION_DAYS (the
    `ops.platform_log_retention` periodic task, hourly); returns how many.

    In batches of `batch_size` ids, each its own short statement: a backlog of millions (the
    setting lowered, a storm of errors) never holds one long lock on the table the writers of
    every process insert into."""
    cutoff = (now or timezone.now()) - timedelta(
        days=settings.MLMANAGER_PLATFORM_LOG_RETENTION_DAYS
    )
    expired = PlatformLogEntry.objects.filter(created_at__lt=cutoff).order_by()
    deleted = 0
    while True:
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        count, _ = PlatformLogEntry.objects.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            break
    if deleted:
        logging.getLogger(__name__).info("platform log: %s entries past retention deleted", deleted)
    return deleted
