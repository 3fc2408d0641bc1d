from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mlmanager.accounts import api as accounts_api
from mlmanager.core import api as core_api
from mlmanager.datasets import api as datasets_api
from mlmanager.jobs import api as jobs_api
from mlmanager.machines import api as machines_api
from mlmanager.ops import views as ops_views
from mlmanager.predictions import api as predictions_api

api_v1 = [
    path(
        "",
        core_api.ApiIndexApi.as_view(
            resources={
                "signup": "api:signup",
                "token": "api:token",
                "me": "api:me",
                "teams": "api:teams",
                "datasets": "api:datasets",
                "models": "api:models",
                "predictions": "api:predictions",
                "jobs": "api:jobs",
            }
        ),
        name="index",
    ),
    path("auth/signup/", accounts_api.SignupApi.as_view(), name="signup"),
    path("auth/token/", accounts_api.TokenCreateApi.as_view(), name="token"),
    path("me/", accounts_api.MeApi.as_view(), name="me"),
    path("teams/", accounts_api.TeamListCreateApi.as_view(), name="teams"),
    path(
        "teams/<int:team_id>/members/",
        accounts_api.TeamMemberListApi.as_view(),
        name="team-members",
    ),
    path("datasets/", datasets_api.DatasetListCreateApi.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>/", datasets_api.DatasetDetailApi.as_view(), name="dataset"),
    path(
        "datasets/<int:dataset_id>/preview/",
        datasets_api.DatasetPreviewApi.as_view(),
        name="dataset-preview",
    ),
    path("models/", machines_api.MachineListCreateApi.as_view(), name="models"),
    path("models/<int:machine_id>/", machines_api.MachineDetailApi.as_view(), name="model"),
    path(
        "models/<int:machine_id>/start_training/",
        machines_api.MachineStartTrainingApi.as_view(),
        name="model-start-training",
    ),
    path(
        "models/<int:machine_id>/training_status/",
        machines_api.MachineTrainingStatusApi.as_view(),
        name="model-training-status",
    ),
    path(
        "models/<int:machine_id>/versions/",
        machines_api.MachineVersionListApi.as_view(),
        name="model-versions",
    ),
    path(
        "models/<int:machine_id>/versions/<int:number>/",
        machines_api.MachineVersionDetailApi.as_view(),
        name="model-version",
    ),
    path(
        "models/<int:machine_id>/versions/<int:number>/activate/",
        machines_api.MachineVersionActivateApi.as_view(),
        name="model-version-activate",
    ),
    path(
        "models/<int:machine_id>/predict/",
        predictions_api.ModelPredictApi.as_view(),
        name="model-predict",
    ),
    path(
        "models/<int:machine_id>/batch_predictions/",
        predictions_api.ModelBatchPredictionApi.as_view(),
        name="model-batch-predictions",
    ),
    path(
        "models/<int:machine_id>/feedback_dataset/",
        predictions_api.ModelFeedbackDatasetApi.as_view(),
        name="model-feedback-dataset",
    ),
    path("predictions/", predictions_api.PredictionListApi.as_view(), name="predictions"),
    path(
        "predictions/<str:prediction_id>/feedback/",
        predictions_api.PredictionFeedbackApi.as_view(),
        name="prediction-feedback",
    ),
    path(
        "batch_predictions/<int:batch_id>/",
        predictions_api.BatchPredictionDetailApi.as_view(),
        name="batch-prediction",
    ),
    path(
        "batch_predictions/<int:batch_id>/download/",
        predictions_api.BatchPredictionDownloadApi.as_view(),
        name="batch-prediction-download",
    ),
    path("runs/<int:run_id>/", machines_api.RunDetailApi.as_view(), name="run"),
    path("runs/<int:run_id>/cancel/", machines_api.RunCancelApi.as_view(), name="run-cancel"),
    path("jobs/", jobs_api.JobListApi.as_view(), name="jobs"),
    path("jobs/<int:job_id>/", jobs_api.JobDetailApi.as_view(), name="job"),
    path("jobs/<int:job_id>/cancel/", jobs_api.JobCancelApi.as_view(), name="job-cancel"),
]

urlpatterns = [
    # Probes and metrics for load balancers and Prometheus (mlmanager/ops), at the top level
    # and without a trailing slash, where such tools look by default.
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("", RedirectView.as_view(pattern_name="datasets:list", permanent=False)),
    path("accounts/", include("mlmanager.accounts.urls")),
    path("datasets/", include("mlmanager.datasets.urls")),
    path("models/", include("mlmanager.machines.urls")),
    path("jobs/", include("mlmanager.jobs.urls")),
    path("", include("mlmanager.predictions.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its start-up script served apart (?script) and its styles in a static
    # file: the Content-Security-Policy allows no inline script or style.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="core/api_docs.html"),
        name="api-docs",
    ),
    # Last: any other path under /api/ (unknown, or an id that is not a number) answers 404 in
    # the API's error shape, never Django's HTML page.
    re_path(r"^api(?:/|$)", core_api.api_not_found, name=core_api.API_NOT_FOUND_URL_NAME),
]

# An error outside any API view answers in the API's shape under /api/ (core.api.server_error).
handler500 = "mlmanager.core.api.server_error"
