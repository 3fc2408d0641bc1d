"""The platform log: warnings and errors of every process, kept in the database so staff can
read what went wrong on any machine from one page (ops.platform_log writes it)."""

from __future__ import annotations

import logging

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProcessKind(models.TextChoices):
    """What kind of process wrote an entry (ops.platform_log.process_kind)."""

    WEB = "web", _("Web")
    WORKER = "worker", _("Worker")
    SCHEDULER = "scheduler", _("Scheduler")
    BRIDGE = "bridge", _("Sensor bridge")
    CLI = "cli", _("Command")


class PlatformLogEntry(models.Model):
    """One log record at WARNING or above, from any process (web, worker, scheduler, bridge,
    command): when, how bad, where in the code, what, and in which request or job.

    Written in batches by `ops.platform_log.PlatformLogHandler` and never edited; the
    `ops.platform_log_retention` periodic task deletes entries older than
    MLMANAGER_PLATFORM_LOG_RETENTION_DAYS. Not owned by a team: only staff read it.
    """

    class Level(models.IntegerChoices):
        # Python's own numbers, so `level >= ERROR` is a plain comparison.
        WARNING = logging.WARNING, _("Warning")
        ERROR = logging.ERROR, _("Error")
        CRITICAL = logging.CRITICAL, _("Critical")

    Process = ProcessKind

    # When the record was made in its process, not when the batch reached the database.
    created_at = models.DateTimeField(db_index=True)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    logger = models.CharField(max_length=200)
    module = models.CharField(max_length=200, blank=True)
    function = models.CharField(max_length=200, blank=True)
    line = models.PositiveIntegerField(default=0)
    message = models.TextField()
    traceback = models.TextField(blank=True)
    host = models.CharField(max_length=255)
    process = models.CharField(max_length=10, choices=ProcessKind.choices)
    pid = models.PositiveIntegerField(default=0)
    # The client's address (the request's Caller); text, not an IP column, so that no value a
    # proxy sends can make the database refuse the batch.
    address = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # A plain number, not a foreign key: the entry outlives its job and never joins it.
    job_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("platform log entry")
        verbose_name_plural = _("platform log entries")
        constraints = [
            # Anything below WARNING is the console's; the handler never writes it.
            models.CheckConstraint(
                condition=models.Q(level__gte=logging.WARNING), name="platform_log_level_min"
            ),
            models.CheckConstraint(
                condition=models.Q(process__in=ProcessKind.values),
                name="platform_log_process_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.level_name} {self.logger}: {self.message[:80]}"

    @property
    def level_name(self) -> str:
        """WARNING, ERROR, CRITICAL, or the name of a custom level in between."""
        return logging.getLevelName(self.level)
