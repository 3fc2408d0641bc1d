from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DatasetsConfig(AppConfig):
    name = "mlmanager.datasets"
    label = "datasets"
    # Where config/urls.py mounts this app's urls.py.
    url_prefix = "datasets/"

    def ready(self) -> None:
        from mlmanager.core.registries import (
            JobKind,
            LiveEventResolver,
            job_kinds,
            live_event_resolvers,
        )
        from mlmanager.datasets.jobs import DATASET_PROCESS, dataset_links, dataset_pages

        job_kinds.register(
            JobKind(DATASET_PROCESS, _("Process dataset"), "datasets.Dataset", dataset_links)
        )
        live_event_resolvers.register(
            LiveEventResolver(DATASET_PROCESS, ("dataset_id",), dataset_pages)
        )
