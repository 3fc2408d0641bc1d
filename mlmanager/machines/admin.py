"""Models, their training runs and their versions in the Django admin (/admin/).

Runs and versions are records of what happened (a version's artifacts are signed files on
disk): staff read them here; a model is renamed here or deleted with its files."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.machines.models import (
    Machine,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
    RetrainingDecision,
    RetrainingPolicy,
    TrainingRun,
)
from mlmanager.machines.services import machine_delete


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "status",
        "dataset",
        "active_version",
        "level",
        "time_budget_s",
        "created_by",
        "created_at",
    ]
    list_filter = ["level"]
    search_fields = ["name", "description", "team__name", "created_by__email"]
    list_select_related = ["team", "dataset", "active_version", "created_by"]
    date_hierarchy = "created_at"
    # Inputs, outputs and the active version change through training and the model page,
    # which keep them consistent with the runs and artifacts.
    readonly_fields = [
        field.name for field in Machine._meta.fields if field.name not in ("name", "description")
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Machine]:
        return super().get_queryset(request).with_status()  # type: ignore[attr-defined,no-any-return]

    @admin.display(description=_("status"), ordering="status")
    def status(self, machine: Machine) -> str:
        return machine.status_label

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made from a dataset on the models page

    def delete_model(self, request: HttpRequest, obj: Machine) -> None:
        # Cancels its training, removes its files after commit; the staff member is recorded.
        machine_delete(caller=request.caller, machine=obj)  # type: ignore[attr-defined]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Machine]) -> None:
        for machine in queryset:
            machine_delete(caller=request.caller, machine=machine)  # type: ignore[attr-defined]


class RecordAdmin(ReadOnlyAdmin):
    """Runs and versions are deleted with their model, never alone: a version's row is what
    proves its artifact."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(RecordAdmin):
    list_display = [
        "id",
        "machine",
        "team",
        "job",
        "is_active",
        "candidates",
        "best_score",
        "best_estimator",
        "time_budget_s",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["machine__name", "team__name", "best_estimator"]
    list_select_related = ["machine", "team", "job"]
    date_hierarchy = "created_at"


@admin.register(ModelVersion)
class ModelVersionAdmin(RecordAdmin):
    list_display = ["__str__", "machine", "number", "team", "outcome", "run", "created_at"]
    list_filter = ["outcome"]
    search_fields = ["machine__name", "team__name"]
    list_select_related = ["machine", "team", "run"]
    date_hierarchy = "created_at"


# Aliases and retraining policies change through the model page and the API, which audit every
# move; staff read them here.
@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyAdmin):
    list_display = ["name", "machine", "version", "team", "updated_by", "updated_at"]
    search_fields = ["name", "machine__name", "team__name"]
    list_select_related = ["machine", "version", "team", "updated_by"]


@admin.register(ModelAliasEvent)
class ModelAliasEventAdmin(RecordAdmin):
    list_display = [
        "alias",
        "machine",
        "previous_version_number",
        "version_number",
        "actor",
        "created_at",
    ]
    search_fields = ["alias", "machine__name", "team__name", "actor__email"]
    list_select_related = ["machine", "actor"]
    date_hierarchy = "created_at"


@admin.register(RetrainingPolicy)
class RetrainingPolicyAdmin(ReadOnlyAdmin):
    list_display = [
        "machine",
        "team",
        "enabled",
        "schedule",
        "at_time",
        "time_zone",
        "after_new_rows",
        "last_started_at",
    ]
    list_filter = ["enabled", "schedule"]
    search_fields = ["machine__name", "team__name"]
    list_select_related = ["machine", "team"]


@admin.register(RetrainingDecision)
class RetrainingDecisionAdmin(RecordAdmin):
    list_display = [
        "machine",
        "run",
        "metric",
        "candidate_score",
        "champion_score",
        "promoted",
        "created_at",
    ]
    list_filter = ["promoted"]
    search_fields = ["machine__name", "team__name"]
    list_select_related = ["machine", "run"]
    date_hierarchy = "created_at"
