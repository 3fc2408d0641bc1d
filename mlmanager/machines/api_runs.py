"""API v1: a model's run history, runs compared side by side, re-running a run exactly, and a
run's downloadable artifacts (model zip, metrics JSON, leaderboard CSV)."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core import storage
from mlmanager.core.access import Action
from mlmanager.core.api import ErrorSerializer
from mlmanager.core.pagination import paginated_response
from mlmanager.machines import selectors, selectors_runs, services
from mlmanager.machines.services import run_artifacts


class RunCreatorSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class RunSpecInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    type = serializers.CharField(help_text="The column's type when the run started.")


class RunSpecOutputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    task = serializers.CharField()
    metric = serializers.CharField()


class RunSpecDatasetSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(allow_null=True, help_text="The dataset the run trained on.")
    checksum = serializers.CharField(
        allow_blank=True,
        help_text="sha256 of its stored file when the run started; empty for runs recorded "
        "before checksums were kept.",
    )
    rows = serializers.IntegerField(allow_null=True)


class RunSpecSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField(help_text="table or images")
    inputs = RunSpecInputSerializer(many=True)
    outputs = RunSpecOutputSerializer(many=True)
    time_budget_s = serializers.FloatField()
    max_candidates = serializers.IntegerField(
        allow_null=True, help_text="The search's cap on candidates (same seed and cap: same model)."
    )
    seed = serializers.IntegerField()
    dataset = RunSpecDatasetSerializer()
    rerun_of = serializers.IntegerField(
        allow_null=True, help_text="The run this one re-ran, if it is a re-run."
    )


class RunVersionOutputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    task = serializers.CharField()
    metric = serializers.CharField()
    metrics = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="Holdout metrics (numbers; the curves are in the version and metrics.json).",
    )
    baseline = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        allow_null=True,
        help_text="The same metrics of the majority class or the mean; null for versions "
        "recorded before baselines were measured.",
    )
    leaderboard = serializers.ListField(
        child=serializers.DictField(), help_text="Best first: estimator, config, score, fit_time_s."
    )


class RunHistorySerializer(serializers.Serializer[Any]):
    """One run of a model's history (selectors_runs.run_entry)."""

    id = serializers.IntegerField()
    model = serializers.IntegerField()
    status = serializers.CharField(help_text="Its job's: queued, running, succeeded, failed…")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    created_by = RunCreatorSerializer(allow_null=True)
    spec = RunSpecSerializer()
    candidates = serializers.IntegerField()
    best_score = serializers.FloatField(allow_null=True)
    best_estimator = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(
        allow_null=True, help_text="The number of the version the run produced, if any."
    )
    outputs = RunVersionOutputSerializer(
        many=True, help_text="Per output, the version's metrics and leaderboard (empty: none)."
    )


class RunListEntrySerializer(RunHistorySerializer):
    """A TrainingRun serialised as its history entry."""

    def to_representation(self, instance: Any) -> Any:
        return super().to_representation(selectors_runs.run_entry(instance))


class MachineRunListApi(APIView):
    @extend_schema(
        responses=RunHistorySerializer(many=True),
        description="The model's runs, newest first, each with its spec, status, scores and "
        "the metrics and leaderboard of the version it produced.",
    )
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors_runs.runs_history(machine=machine),
            serializer_class=RunListEntrySerializer,
        )


class RunCompareApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        class ParameterSerializer(serializers.Serializer[Any]):
            name = serializers.CharField()
            values = serializers.ListField(
                child=serializers.JSONField(), help_text="One per run, in the order of `ids`."
            )
            differs = serializers.BooleanField()

        class MetricSerializer(serializers.Serializer[Any]):
            output = serializers.CharField()
            metric = serializers.CharField()
            optimised = serializers.BooleanField(help_text="The metric the search optimised.")
            higher_is_better = serializers.BooleanField()
            values = serializers.ListField(
                child=serializers.FloatField(allow_null=True),
                help_text="Holdout values, one per run (null: no version or no such metric).",
            )
            best_run = serializers.IntegerField(allow_null=True)

        class CurveSerializer(serializers.Serializer[Any]):
            class SeriesSerializer(serializers.Serializer[Any]):
                run = serializers.IntegerField()
                eval_method = serializers.CharField(allow_null=True, help_text="cv or holdout")
                until_s = serializers.FloatField(
                    allow_null=True, help_text="How long the search ran (null while it runs)."
                )
                points = serializers.ListField(
                    child=serializers.ListField(child=serializers.FloatField()),
                    help_text="[seconds since the start, best score] each time it improved.",
                )

            output = serializers.CharField()
            series = SeriesSerializer(many=True)

        runs = RunHistorySerializer(many=True)
        parameters = ParameterSerializer(many=True)
        metrics = MetricSerializer(many=True)
        curves = CurveSerializer(many=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ids",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="2 to 10 run ids separated by commas (runs of one team; of any "
                "of its models).",
                pattern=r"^\d+(,\d+){1,9}$",
            )
        ],
        responses=OutputSerializer,
        description="Runs side by side: parameters, holdout metrics per output and the "
        "search's score curves. 400 `invalid_ids` for a malformed list.",
    )
    def get(self, request: Request) -> Response:
        ids = selectors_runs.parse_run_ids(request.query_params.get("ids"))
        runs = selectors_runs.runs_to_compare(caller=api_caller(request), ids=ids)
        return Response(self.OutputSerializer(selectors_runs.compare_runs(runs)).data)


class RunRerunApi(APIView):
    @extend_schema(
        request=None,
        responses={
            202: RunHistorySerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="dataset_missing (the run's dataset was deleted), dataset_changed "
                "(its data is no longer what the run trained on), training_active.",
            ),
        },
        description="A new run with the same spec (inputs, outputs, budget, candidate cap, "
        "seed) on the same dataset.",
    )
    def post(self, request: Request, run_id: int) -> Response:
        caller = api_caller(request)
        run = selectors.access_run(caller=caller, id=run_id, action=Action.CHANGE)
        new_run = services.training_rerun(caller=caller, run=run)
        new_run = selectors.access_run(caller=caller, id=new_run.pk)
        return Response(
            RunListEntrySerializer(new_run).data,
            status=status.HTTP_202_ACCEPTED,
        )


class RunArtifactSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="model.zip, metrics.json or leaderboard.csv")
    size = serializers.IntegerField(help_text="Bytes.")
    content_type = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, artifact: run_artifacts.RunArtifact) -> str:
        url = reverse("api:run-artifact", args=[self.context["run_id"], artifact.name])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


NO_VERSION = OpenApiResponse(
    ErrorSerializer, description="no_version: the run produced no version (nothing to download)."
)


class RunArtifactListApi(APIView):
    @extend_schema(
        responses={200: RunArtifactSerializer(many=True), 409: NO_VERSION},
        description="The run's downloadable artifacts: model.zip (the version's signed "
        "artifact files), metrics.json (holdout metrics and baseline per output) and "
        "leaderboard.csv (per output: rank, estimator, score…).",
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.access_run(caller=api_caller(request), id=run_id)
        artifacts = run_artifacts.run_artifacts(run=run)
        return paginated_response(
            request=request,
            view=self,
            queryset=artifacts,  # type: ignore[arg-type]
            serializer_class=RunArtifactSerializer,
            context={"request": request, "run_id": run.pk},
        )


class RunArtifactDownloadApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("run_id", int, OpenApiParameter.PATH),
            OpenApiParameter(
                "name",
                str,
                OpenApiParameter.PATH,
                enum=list(run_artifacts.CONTENT_TYPES),
            ),
        ],
        responses={
            **{
                (200, content_type): OpenApiTypes.BINARY
                for content_type in run_artifacts.CONTENT_TYPES.values()
            },
            409: NO_VERSION,
        },
        description="One artifact, as an attachment (404 for a name a run does not offer).",
    )
    def get(self, request: Request, run_id: int, name: str) -> FileResponse:
        run = selectors.access_run(caller=api_caller(request), id=run_id)
        return artifact_response(run=run, name=name)


def artifact_response(*, run: Any, name: str) -> FileResponse:
    """One artifact of a run streamed from the storage (for the API and the pages)."""
    stream, artifact = run_artifacts.run_artifact_open(run=run, name=name)
    return storage.StoredFileResponse(
        stream,
        as_attachment=True,
        filename=f"run-{run.pk}-{artifact.name}",
        content_type=artifact.content_type,
    )
