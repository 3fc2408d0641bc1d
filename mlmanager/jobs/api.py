"""API v1: jobs (read, cancel)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.jobs import selectors, services
from mlmanager.jobs.filters import JobFilter
from mlmanager.jobs.models import Job


class JobOutputSerializer(serializers.ModelSerializer[Job]):
    log = serializers.ListField(child=serializers.CharField(), source="log_lines")

    class Meta:
        model = Job
        fields = [
            "id",
            "team",
            "kind",
            "description",
            "status",
            "progress",
            "message",
            "log",
            "error",
            "result",
            "cancel_requested",
            "worker",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobListApi(APIView):
    filterset_class = JobFilter

    @extend_schema(responses=JobOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        jobs = filter_queryset(
            request=request,
            queryset=selectors.jobs_for_caller(caller=api_caller(request)),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=jobs, serializer_class=JobOutputSerializer
        )


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.access_job(caller=api_caller(request), id=job_id)
        return Response(JobOutputSerializer(job).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        job = selectors.access_job(caller=api_caller(request), id=job_id, action=Action.CHANGE)
        job = services.job_cancel(job=job)
        return Response(JobOutputSerializer(job).data)
