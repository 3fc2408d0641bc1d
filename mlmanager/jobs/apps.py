from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "mlmanager.jobs"
    label = "jobs"
    # Where config/urls.py mounts this app's urls.py.
    url_prefix = "jobs/"

    def ready(self) -> None:
        from mlmanager.core.registries import PeriodicTask, periodic_tasks
        from mlmanager.jobs.services import jobs_reap, reaper_interval_s

        periodic_tasks.register(PeriodicTask("reap_jobs", reaper_interval_s, jobs_reap))
