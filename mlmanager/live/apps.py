from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "mlmanager.live"
    label = "live"

    def ready(self) -> None:
        from mlmanager.accounts.signals import membership_removed
        from mlmanager.jobs.signals import job_changed
        from mlmanager.live import events

        # job_changed is only ever sent for a Job row: no sender to filter on.
        job_changed.connect(events.on_job_changed, dispatch_uid="live.job_changed")
        membership_removed.connect(
            events.on_membership_removed, dispatch_uid="live.membership_removed"
        )
