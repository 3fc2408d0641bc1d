"""The consulting API under /api/v1/ (mounted by config/urls.py in the `api` namespace)."""

from django.urls import path

from mlmanager.consulting import api

index: dict[str, str] = {"consulting": "consulting"}

urlpatterns: list = [
    path("consulting/", api.ConsultingListCreateApi.as_view(), name="consulting"),
    path(
        "consulting/<int:request_id>/",
        api.ConsultingDetailApi.as_view(),
        name="consulting-request",
    ),
    path(
        "consulting/<int:request_id>/attachment/",
        api.ConsultingAttachmentApi.as_view(),
        name="consulting-attachment",
    ),
    path(
        "consulting/<int:request_id>/approve/",
        api.ConsultingApproveApi.as_view(),
        name="consulting-approve",
    ),
    path(
        "consulting/<int:request_id>/contract/",
        api.ConsultingContractApi.as_view(),
        name="consulting-contract",
    ),
    path(
        "consulting/<int:request_id>/accept/",
        api.ConsultingAcceptApi.as_view(),
        name="consulting-accept",
    ),
    path(
        "consulting/<int:request_id>/finish/",
        api.ConsultingFinishApi.as_view(),
        name="consulting-finish",
    ),
    path(
        "consulting/<int:request_id>/cancel/",
        api.ConsultingCancelApi.as_view(),
        name="consulting-cancel",
    ),
]
