from django.apps import AppConfig


class SitesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.sites"
    verbose_name = "Sites and sensors"
    url_prefix = "sites/"

    def ready(self) -> None:
        from mlmanager.accounts.signals import membership_removed
        from mlmanager.core.registries import PeriodicTask, periodic_tasks
        from mlmanager.sites.services import maintenance
        from mlmanager.sites.services.sites import on_membership_removed

        # A person who leaves a team loses their roles on its sites (they would otherwise
        # come back with them on rejoining).
        membership_removed.connect(on_membership_removed, dispatch_uid="sites.membership_removed")

        periodic_tasks.register(
            PeriodicTask("sites.maintenance", maintenance.interval_s, maintenance.run)
        )
