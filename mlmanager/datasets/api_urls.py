"""The datasets API under /api/v1/ (mounted by config/urls.py in the `api` namespace)."""

from django.urls import path

from mlmanager.datasets import api, api_graphs, api_relations, api_versions

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {"datasets": "datasets"}

urlpatterns = [
    path("datasets/", api.DatasetListCreateApi.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>/", api.DatasetDetailApi.as_view(), name="dataset"),
    path(
        "datasets/<int:dataset_id>/preview/",
        api.DatasetPreviewApi.as_view(),
        name="dataset-preview",
    ),
    path(
        "datasets/<int:dataset_id>/images/",
        api.DatasetImageListApi.as_view(),
        name="dataset-images",
    ),
    # column: image, thumbnail or mask (anything else is a 404 from the selector).
    path(
        "datasets/<int:dataset_id>/images/<int:index>/<str:column>.png",
        api.DatasetImageFileApi.as_view(),
        name="dataset-image-file",
    ),
    path(
        "datasets/<int:dataset_id>/relations/",
        api_relations.DatasetRelationsApi.as_view(),
        name="dataset-relations",
    ),
    path(
        "datasets/<int:dataset_id>/rows/",
        api_versions.DatasetRowsAppendApi.as_view(),
        name="dataset-rows",
    ),
    path(
        "datasets/<int:dataset_id>/versions/",
        api_versions.DatasetVersionListApi.as_view(),
        name="dataset-versions",
    ),
    path(
        "datasets/<int:dataset_id>/confirm/",
        api.DatasetConfirmApi.as_view(),
        name="dataset-confirm",
    ),
    path("graph_types/", api_graphs.GraphTypeListApi.as_view(), name="graph-types"),
    path(
        "datasets/<int:dataset_id>/graphs/",
        api_graphs.DatasetGraphListCreateApi.as_view(),
        name="dataset-graphs",
    ),
    path(
        "datasets/<int:dataset_id>/graphs/<int:graph_id>/",
        api_graphs.DatasetGraphDetailApi.as_view(),
        name="dataset-graph",
    ),
    path(
        "datasets/<int:dataset_id>/graphs/<int:graph_id>/figure/",
        api_graphs.DatasetGraphFigureApi.as_view(),
        name="dataset-graph-figure",
    ),
]
