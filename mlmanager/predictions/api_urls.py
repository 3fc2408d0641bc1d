"""The predictions API under /api/v1/ (mounted by config/urls.py in the `api` namespace):
predicting with a model, batches, the prediction log, feedback, and the reviews, reports and
files of image predictions."""

from django.urls import path

from mlmanager.predictions import api, api_images

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
    path(
        "models/<int:machine_id>/feedback/append/",
        api.ModelFeedbackAppendApi.as_view(),
        name="model-feedback-append",
    ),
    path("predictions/", api.PredictionListApi.as_view(), name="predictions"),
    path(
        "predictions/<str:prediction_id>/feedback/",
        api.PredictionFeedbackApi.as_view(),
        name="prediction-feedback",
    ),
    path(
        "predictions/<str:prediction_id>/review/",
        api_images.PredictionReviewApi.as_view(),
        name="prediction-review",
    ),
    path(
        "predictions/<str:prediction_id>/report.pdf",
        api_images.PredictionReportApi.as_view(),
        name="prediction-report",
    ),
    path(
        "predictions/<str:prediction_id>/image.png",
        api_images.PredictionImageApi.as_view(),
        name="prediction-image",
    ),
    path(
        "predictions/<str:prediction_id>/mask.png",
        api_images.PredictionMaskApi.as_view(),
        name="prediction-mask",
    ),
    path(
        "batch_predictions/<int:batch_id>/masks/",
        api_images.BatchPredictionMasksApi.as_view(),
        name="batch-prediction-masks",
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
