from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MachinesConfig(AppConfig):
    name = "mlmanager.machines"
    label = "machines"
    verbose_name = "Models"
    # Where config/urls.py mounts this app's urls.py.
    url_prefix = "models/"

    def ready(self) -> None:
        from mlmanager.core.registries import (
            JobKind,
            LiveEventResolver,
            QueueStartupHook,
            job_kinds,
            live_event_resolvers,
            queue_startup_hooks,
        )
        from mlmanager.machines.jobs import (
            GPU_QUEUE,
            MACHINE_TRAIN,
            TRAINING_QUEUE,
            training_links,
            training_pages,
            warm_up_training,
            warm_up_vision,
        )

        job_kinds.register(
            JobKind(MACHINE_TRAIN, _("Train model"), "machines.TrainingRun", training_links)
        )
        from mlmanager.machines.services.mlflow_tracking import MLFLOW_LOG

        job_kinds.register(
            JobKind(MLFLOW_LOG, _("Log a run to MLflow"), "machines.TrainingRun", training_links)
        )
        live_event_resolvers.register(
            LiveEventResolver(MACHINE_TRAIN, ("machine_id",), training_pages)
        )
        queue_startup_hooks.register(
            QueueStartupHook("machines.warm_up_training", TRAINING_QUEUE, warm_up_training)
        )
        queue_startup_hooks.register(
            QueueStartupHook("machines.warm_up_vision", GPU_QUEUE, warm_up_vision)
        )
        # Scheduled retraining (champion/challenger): due policies start runs, once per slot.
        from mlmanager.core.registries import PeriodicTask, periodic_tasks
        from mlmanager.machines.services import retraining

        periodic_tasks.register(
            PeriodicTask("machines.retraining", retraining.interval_s, retraining.retraining_task)
        )
