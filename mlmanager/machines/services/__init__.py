"""Model state changes, by sub-domain: models (machines), training runs, versions.

Interfaces import from here; the modules import each other directly.
"""

from mlmanager.machines.services.machines import machine_create, machine_delete, machine_update
from mlmanager.machines.services.training import (
    training_cancel,
    training_rerun,
    training_run_end,
    training_run_work,
    training_runs_end_orphaned,
    training_start,
)
from mlmanager.machines.services.versions import (
    version_activate,
    version_create,
    version_set_threshold,
)

__all__ = [
    "machine_create",
    "machine_delete",
    "machine_update",
    "training_cancel",
    "training_rerun",
    "training_run_end",
    "training_run_work",
    "training_runs_end_orphaned",
    "training_start",
    "version_activate",
    "version_create",
    "version_set_threshold",
]
