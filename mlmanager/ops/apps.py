from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "mlmanager.ops"
    verbose_name = "Operations"
