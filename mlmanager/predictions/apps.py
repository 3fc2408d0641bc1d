from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PredictionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.predictions"
    verbose_name = "Predictions"
    # At the top level: its pages sit under /models/<id>/, /predictions/ and /batches/.
    url_prefix = ""

    def ready(self) -> None:
        from mlmanager.core.registries import (
            JobKind,
            LiveEventResolver,
            job_kinds,
            live_event_resolvers,
        )
        from mlmanager.predictions.jobs import BATCH_PREDICT, batch_links, batch_pages

        job_kinds.register(
            JobKind(
                BATCH_PREDICT, _("Batch prediction"), "predictions.BatchPrediction", batch_links
            )
        )
        live_event_resolvers.register(
            LiveEventResolver(BATCH_PREDICT, ("machine_id", "batch_id"), batch_pages)
        )
