from django.urls import path

from mlmanager.machines import views, views_versions

app_name = "machines"

urlpatterns = [
    path("", views.machine_list, name="list"),
    path("new/", views.machine_create, name="create"),
    path("<int:machine_id>/", views.machine_detail, name="detail"),
    path("<int:machine_id>/train/", views.machine_train, name="train"),
    path("<int:machine_id>/edit/", views.machine_edit, name="edit"),
    path("<int:machine_id>/delete/", views.machine_delete, name="delete"),
    path(
        "<int:machine_id>/versions/<int:number>/activate/",
        views.version_activate,
        name="version_activate",
    ),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path(
        "<int:machine_id>/versions/<int:number>/threshold/",
        views_versions.version_threshold,
        name="version_threshold",
    ),
]
