from django.urls import path

from mlmanager.datasets import views, views_graphs, views_relations, views_versions

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/preview/", views.dataset_preview, name="preview"),
    path("<int:dataset_id>/rename/", views.dataset_rename, name="rename"),
    path("<int:dataset_id>/column-type/", views.dataset_column_type, name="column_type"),
    path("<int:dataset_id>/delete/", views.dataset_delete, name="delete"),
    path("<int:dataset_id>/relations/", views_relations.dataset_relations, name="relations"),
    path("<int:dataset_id>/versions/", views_versions.dataset_versions, name="versions"),
    path("<int:dataset_id>/append-rows/", views_versions.dataset_append_rows, name="append_rows"),
    path("<int:dataset_id>/gallery/", views.dataset_gallery, name="gallery"),
    path("<int:dataset_id>/confirm/", views.dataset_confirm, name="confirm"),
    path("<int:dataset_id>/graphs/", views_graphs.dataset_graphs, name="graphs"),
    path(
        "<int:dataset_id>/graphs/<int:graph_id>/delete/",
        views_graphs.dataset_graph_delete,
        name="graph_delete",
    ),
    path("<int:dataset_id>/images/<int:index>/", views.dataset_image, name="image"),
    path(
        "<int:dataset_id>/images/<int:index>/<str:column>.png",
        views.dataset_image_file,
        name="image_file",
    ),
]
