from django.urls import path

from mlmanager.machines import (
    views,
    views_dataset,
    views_experimenter,
    views_retraining,
    views_runs,
    views_versions,
)

app_name = "machines"

urlpatterns = [
    path("", views.machine_list, name="list"),
    path("new/", views.machine_create, name="create"),
    path("<int:machine_id>/", views.machine_detail, name="detail"),
    path("<int:machine_id>/train/", views.machine_train, name="train"),
    path("<int:machine_id>/edit/", views.machine_edit, name="edit"),
    path("<int:machine_id>/delete/", views.machine_delete, name="delete"),
    # Pointing the model at another compatible dataset (views_dataset).
    path("<int:machine_id>/dataset/", views_dataset.machine_dataset, name="dataset"),
    path(
        "<int:machine_id>/dataset/change/",
        views_dataset.machine_dataset_change,
        name="dataset_change",
    ),
    path(
        "<int:machine_id>/experimenter/",
        views_experimenter.machine_experimenter,
        name="experimenter",
    ),
    path(
        "<int:machine_id>/versions/<int:number>/activate/",
        views.version_activate,
        name="version_activate",
    ),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    # Aliases of versions and the retraining policy (views_retraining).
    path("<int:machine_id>/aliases/", views_retraining.alias_change, name="aliases"),
    path("<int:machine_id>/retraining/", views_retraining.retraining_change, name="retraining"),
    # Run history, comparison, re-run and artifacts (views_runs).
    path("<int:machine_id>/runs/", views_runs.runs_page, name="runs"),
    path("runs/compare/", views_runs.runs_compare_page, name="runs_compare"),
    path("runs/<int:run_id>/rerun/", views_runs.run_rerun, name="run_rerun"),
    path(
        "runs/<int:run_id>/artifacts/<str:name>/",
        views_runs.run_artifact_download,
        name="run_artifact",
    ),
    path(
        "<int:machine_id>/versions/<int:number>/threshold/",
        views_versions.version_threshold,
        name="version_threshold",
    ),
]
