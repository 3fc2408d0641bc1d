"""API v1 routes of the audit log (paths relative to /api/v1/)."""

from django.urls import path

from mlmanager.audit.api import AuditEventListApi

urlpatterns = [
    path("audit/", AuditEventListApi.as_view(), name="audit"),
]

# GET /api/v1/ lists it (config/urls.py): resource name -> URL name.
index = {"audit": "audit"}
