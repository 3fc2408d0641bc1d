from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "mlmanager.jobs"
    label = "jobs"
