from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.billing"
    verbose_name = "Billing: ledger, prices and quotas"
    url_prefix = "billing/"

    def ready(self) -> None:
        # Holds of trainings whose worker died before settling them (services.charges).
        from mlmanager.billing.services import charges
        from mlmanager.core.registries import PeriodicTask, periodic_tasks

        periodic_tasks.register(
            PeriodicTask(
                "billing.reservations", charges.reaper_interval_s, charges.reservations_reap_task
            )
        )
        # Storage per GB-month, charged once a day per team (services.storage).
        from mlmanager.billing.services import storage

        periodic_tasks.register(
            PeriodicTask("billing.storage", storage.storage_interval_s, storage.storage_charge_all)
        )
