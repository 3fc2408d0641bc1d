from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "mlmanager.machines"
    label = "machines"
    verbose_name = "Models"
