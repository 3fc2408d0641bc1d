"""The models API under /api/v1/ (mounted by config/urls.py in the `api` namespace): models,
their versions and training runs."""

from django.urls import path

from mlmanager.machines import (
    api,
    api_aliases,
    api_experimenter,
    api_exports,
    api_retraining,
    api_runs,
)

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {"models": "models"}

urlpatterns = [
    path("models/", api.MachineListCreateApi.as_view(), name="models"),
    path("models/<int:machine_id>/", api.MachineDetailApi.as_view(), name="model"),
    path(
        "models/<int:machine_id>/start_training/",
        api.MachineStartTrainingApi.as_view(),
        name="model-start-training",
    ),
    path(
        "models/<int:machine_id>/training_status/",
        api.MachineTrainingStatusApi.as_view(),
        name="model-training-status",
    ),
    path(
        "models/<int:machine_id>/versions/",
        api.MachineVersionListApi.as_view(),
        name="model-versions",
    ),
    path(
        "models/<int:machine_id>/versions/<int:number>/",
        api.MachineVersionDetailApi.as_view(),
        name="model-version",
    ),
    path(
        "models/<int:machine_id>/experimenter/",
        api_experimenter.MachineExperimenterApi.as_view(),
        name="model-experimenter",
    ),
    path(
        "models/<int:machine_id>/versions/<int:number>/activate/",
        api.MachineVersionActivateApi.as_view(),
        name="model-version-activate",
    ),
    # Exports (ONNX, MLflow) and the MLflow registry (api_exports).
    path(
        "models/<int:machine_id>/versions/<int:number>/export/",
        api_exports.ModelVersionExportApi.as_view(),
        name="model-version-export",
    ),
    path(
        "models/<int:machine_id>/versions/<int:number>/mlflow/register/",
        api_exports.ModelVersionMlflowRegisterApi.as_view(),
        name="model-version-mlflow-register",
    ),
    path(
        "models/<int:machine_id>/aliases/",
        api_aliases.ModelAliasListApi.as_view(),
        name="model-aliases",
    ),
    path(
        "models/<int:machine_id>/aliases/<str:alias>/",
        api_aliases.ModelAliasDetailApi.as_view(),
        name="model-alias",
    ),
    path(
        "models/<int:machine_id>/retraining/",
        api_retraining.ModelRetrainingApi.as_view(),
        name="model-retraining",
    ),
    path(
        "models/<int:machine_id>/retraining/decisions/",
        api_retraining.ModelRetrainingDecisionListApi.as_view(),
        name="model-retraining-decisions",
    ),
    path("runs/<int:run_id>/", api.RunDetailApi.as_view(), name="run"),
    path("runs/<int:run_id>/cancel/", api.RunCancelApi.as_view(), name="run-cancel"),
    # Run history, comparison, re-run and artifacts (api_runs).
    path("models/<int:machine_id>/runs/", api_runs.MachineRunListApi.as_view(), name="model-runs"),
    path("runs/compare/", api_runs.RunCompareApi.as_view(), name="runs-compare"),
    path("runs/<int:run_id>/rerun/", api_runs.RunRerunApi.as_view(), name="run-rerun"),
    path(
        "runs/<int:run_id>/artifacts/",
        api_runs.RunArtifactListApi.as_view(),
        name="run-artifacts",
    ),
    path(
        "runs/<int:run_id>/artifacts/<str:name>/",
        api_runs.RunArtifactDownloadApi.as_view(),
        name="run-artifact",
    ),
]
