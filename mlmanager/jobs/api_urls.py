"""The jobs API under /api/v1/ (mounted by config/urls.py in the `api` namespace)."""

from django.urls import path

from mlmanager.jobs import api

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {"jobs": "jobs"}

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="jobs"),
    path("jobs/<int:job_id>/", api.JobDetailApi.as_view(), name="job"),
    path("jobs/<int:job_id>/cancel/", api.JobCancelApi.as_view(), name="job-cancel"),
]
