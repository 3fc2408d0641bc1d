from typing import Any

from django.apps import AppConfig
from django.db.models.signals import pre_delete


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.monitoring"
    verbose_name = "Charts, alert rules and reports"
    url_prefix = "monitoring/"

    def ready(self) -> None:
        from mlmanager.core.registries import PeriodicTask, periodic_tasks

        # Rules watching a sensor or a model that is deleted (by whatever path: a site with
        # its sensors, a model) are disabled, and the sensor's built-in rules go with it.
        pre_delete.connect(_sensor_deleted, sender="sites.Sensor", dispatch_uid="monitoring.sensor")
        pre_delete.connect(
            _machine_deleted, sender="machines.Machine", dispatch_uid="monitoring.machine"
        )
        from mlmanager.monitoring.services import delivery, reports

        # The outbox of e-mails and webhooks, escalation of unacknowledged alerts, and the
        # scheduled reports: each once per slot, however many schedulers run.
        periodic_tasks.register(
            PeriodicTask("monitoring.deliver", delivery.interval_s, delivery.deliver_task)
        )
        periodic_tasks.register(
            PeriodicTask(
                "monitoring.escalate",
                delivery.escalate_interval_s,
                delivery.escalate_task,
            )
        )
        periodic_tasks.register(
            PeriodicTask("monitoring.reports", reports.interval_s, reports.send_due_task)
        )
        # Alert rules on their schedule: for_s timers, no_data, aggregates and models.
        from mlmanager.monitoring.services import evaluation

        periodic_tasks.register(
            PeriodicTask("monitoring.evaluate", evaluation.interval_s, evaluation.evaluate_task)
        )


def _sensor_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from mlmanager.monitoring.services.rules import rules_on_watched_deleted

    rules_on_watched_deleted(sensor_ids=[instance.pk])


def _machine_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    from mlmanager.monitoring.services.rules import rules_on_watched_deleted

    rules_on_watched_deleted(machine_ids=[instance.pk])
