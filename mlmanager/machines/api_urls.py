"""The models API under /api/v1/ (mounted by config/urls.py in the `api` namespace): models,
their versions and training runs."""

from django.urls import path

from mlmanager.machines import api

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
        "models/<int:machine_id>/versions/<int:number>/activate/",
        api.MachineVersionActivateApi.as_view(),
        name="model-version-activate",
    ),
    path("runs/<int:run_id>/", api.RunDetailApi.as_view(), name="run"),
    path("runs/<int:run_id>/cancel/", api.RunCancelApi.as_view(), name="run-cancel"),
]
