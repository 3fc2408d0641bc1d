from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "mlmanager.datasets"
    label = "datasets"
