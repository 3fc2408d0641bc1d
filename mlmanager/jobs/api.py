"""API v1: jobs (read, cancel)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.core.access import Action
from mlmanager.core.pagination import paginated_response
from mlmanager.jobs import selectors, services
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
    class FilterSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=Job.Status.choices, required=False)
        team = serializers.IntegerField(required=False)

    @extend_schema(parameters=[FilterSerializer], responses=JobOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs = selectors.jobs_for_user(user=request.user)
        if "status" in filters.validated_data:
            jobs = jobs.filter(status=filters.validated_data["status"])
        if "team" in filters.validated_data:
            jobs = jobs.filter(team_id=filters.validated_data["team"])
        return paginated_response(
            request=request, view=self, queryset=jobs, serializer_class=JobOutputSerializer
        )


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.access_job(user=request.user, id=job_id)
        return Response(JobOutputSerializer(job).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        job = selectors.access_job(user=request.user, id=job_id, action=Action.CHANGE)
        job = services.job_cancel(job=job)
        return Response(JobOutputSerializer(job).data)
