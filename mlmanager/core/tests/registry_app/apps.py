from django.apps import AppConfig


class RegistryAppConfig(AppConfig):
    name = "mlmanager.core.tests.registry_app"
    label = "registry_app"

    def ready(self) -> None:
        from mlmanager.core.registries import (
            JobKind,
            LiveEventResolver,
            PeriodicTask,
            QueueStartupHook,
            job_kinds,
            live_event_resolvers,
            periodic_tasks,
            queue_startup_hooks,
        )
        from mlmanager.core.tests.registry_app import jobs

        job_kinds.register(JobKind(jobs.GREET, "Greet a team", "accounts.Team", jobs.team_links))
        live_event_resolvers.register(LiveEventResolver(jobs.GREET, ("team_page_id",), jobs.pages))
        periodic_tasks.register(PeriodicTask(jobs.TICK, jobs.tick_interval_s, jobs.tick))
        queue_startup_hooks.register(QueueStartupHook(jobs.STARTUP, "default", jobs.on_startup))
