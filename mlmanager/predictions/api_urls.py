"""The predictions API under /api/v1/ (mounted by config/urls.py in the `api` namespace):
predicting with a model, batches, the prediction log and feedback."""

from django.urls import path

from mlmanager.predictions import api

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {"predictions": "predictions"}

urlpatterns = [
    path("models/<int:machine_id>/predict/", api.ModelPredictApi.as_view(), name="model-predict"),
    path(
        "models/<int:machine_id>/batch_predictions/",
        api.ModelBatchPredictionApi.as_view(),
        name="model-batch-predictions",
    ),
    path(
        "models/<int:machine_id>/feedback_dataset/",
        api.ModelFeedbackDatasetApi.as_view(),
        name="model-feedback-dataset",
    ),
    path("predictions/", api.PredictionListApi.as_view(), name="predictions"),
    path(
        "predictions/<str:prediction_id>/feedback/",
        api.PredictionFeedbackApi.as_view(),
        name="prediction-feedback",
    ),
    path(
        "batch_predictions/<int:batch_id>/",
        api.BatchPredictionDetailApi.as_view(),
        name="batch-prediction",
    ),
    path(
        "batch_predictions/<int:batch_id>/download/",
        api.BatchPredictionDownloadApi.as_view(),
        name="batch-prediction-download",
    ),
]
