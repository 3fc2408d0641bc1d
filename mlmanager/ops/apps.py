from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "mlmanager.ops"
    verbose_name = "Operations"
    # At the top level: /healthz, /readyz and /metrics, where probes look by default (and the
    # staff's /ops/platform-log/).
    url_prefix = ""

    def ready(self) -> None:
        from mlmanager.core.registries import PeriodicTask, periodic_tasks
        from mlmanager.ops import services

        periodic_tasks.register(
            PeriodicTask(
                "ops.platform_log_retention",
                services.platform_log_retention_interval_s,
                services.platform_log_delete_expired,
            )
        )
