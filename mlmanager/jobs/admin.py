"""Workers and jobs in the Django admin (/admin/), for staff: who runs what, and since when."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.jobs.models import Job, PeriodicSlot, Worker, heartbeat_fresh_since


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "backend",
        "queue_list",
        "cpu_count",
        "memory_gb",
        "gpu_list",
        "current_job",
        "heartbeat_at",
        "alive",
    ]
    list_filter = ["backend", "hostname"]
    readonly_fields = [field.name for field in Worker._meta.fields]

    @admin.display(description=_("queues"))
    def queue_list(self, worker: Worker) -> str:
        return ", ".join(worker.queues)

    @admin.display(description=_("memory (GB)"))
    def memory_gb(self, worker: Worker) -> str:
        return f"{worker.memory_bytes / 2**30:.1f}"

    @admin.display(description=_("GPUs"))
    def gpu_list(self, worker: Worker) -> str:
        return (
            ", ".join(
                f"{gpu['name']} ({gpu['memory_bytes'] / 2**30:.0f} GB)" for gpu in worker.gpus
            )
            or "—"
        )

    @admin.display(description=_("alive"), boolean=True)
    def alive(self, worker: Worker) -> bool:
        return worker.stopped_at is None and worker.heartbeat_at >= heartbeat_fresh_since()

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "team", "worker", "requeues", "created_at"]
    list_filter = ["status", "kind", "cancel_requested"]
    search_fields = ["worker", "description", "team__name", "created_by__email"]
    list_select_related = ["team"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(PeriodicSlot)
class PeriodicSlotAdmin(ReadOnlyAdmin):
    """Which scheduler ran each slot of a periodic task: a missing slot is a run that never
    happened."""

    list_display = ["name", "slot", "claimed_by", "claimed_at"]
    list_filter = ["name"]
    search_fields = ["name", "claimed_by"]
    ordering = ["-claimed_at"]
