from django.urls import path

from mlmanager.predictions import views, views_images, views_team

app_name = "predictions"

urlpatterns = [
    path("predictions/", views_team.team_prediction_log, name="team_log"),
    path("models/<int:machine_id>/predict/", views.predict, name="predict"),
    path("models/<int:machine_id>/predictions/", views.prediction_log, name="log"),
    path(
        "models/<int:machine_id>/predictions/feedback-dataset/",
        views.feedback_dataset,
        name="feedback_dataset",
    ),
    path("models/<int:machine_id>/batches/", views.batch_list, name="batches"),
    path(
        "predictions/<uuid:prediction_id>/feedback/",
        views.prediction_feedback,
        name="feedback",
    ),
    path("batches/<int:batch_id>/download/", views.batch_download, name="batch_download"),
    path("batches/<int:batch_id>/masks/", views.batch_masks, name="batch_masks"),
    path("predictions/<uuid:prediction_id>/", views_images.prediction_detail, name="detail"),
    path(
        "predictions/<uuid:prediction_id>/review/",
        views_images.prediction_review,
        name="review",
    ),
    path(
        "predictions/<uuid:prediction_id>/image.png",
        views_images.prediction_image,
        name="image",
    ),
    path(
        "predictions/<uuid:prediction_id>/overlay.png",
        views_images.prediction_overlay,
        name="overlay",
    ),
    path(
        "predictions/<uuid:prediction_id>/report.pdf",
        views_images.prediction_report,
        name="report",
    ),
]
