"""API v1: models (create, read, change, delete), training runs (start, status, cancel) and
versions (list, read, activate, set the decision threshold)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import StrictCharField
from mlmanager.core.errors import ApplicationError
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.datasets.selectors import access_dataset, access_dataset_of_team
from mlmanager.engine.training import TASKS
from mlmanager.machines import selectors, services
from mlmanager.machines.filters import MachineFilter
from mlmanager.machines.models import IMAGE_TASKS, Machine, ModelVersion, TrainingRun


class MachineOutputSerializer(serializers.ModelSerializer[Machine]):
    # A plain string in the schema: a "status" enum would collide with the jobs' and datasets'.
    status = serializers.CharField(
        read_only=True, help_text="untrained, training, ready or failed (Machine.Status)"
    )
    active_version = serializers.IntegerField(
        source="active_version.number", allow_null=True, read_only=True
    )

    class Meta:
        model = Machine
        fields = [
            "id",
            "team",
            "name",
            "description",
            "dataset",
            "status",
            "inputs",
            "outputs",
            "level",
            "time_budget_s",
            "active_version",
            "created_at",
            "updated_at",
        ]


class LeftOutColumnSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    type = serializers.CharField()
    reason = serializers.CharField()


class MachineDetailOutputSerializer(MachineOutputSerializer):
    left_out_columns = serializers.SerializerMethodField()

    class Meta(MachineOutputSerializer.Meta):
        fields = [*MachineOutputSerializer.Meta.fields, "left_out_columns"]

    @extend_schema_field(LeftOutColumnSerializer(many=True))
    def get_left_out_columns(self, machine: Machine) -> list[dict[str, Any]]:
        """Columns of the dataset that are neither inputs nor outputs, and why."""
        return [
            {"name": row["name"], "type": row["type"], "reason": row["reason"]}
            for row in selectors.left_out_columns(machine=machine)
        ]


class RunOutputSerializer(serializers.ModelSerializer[TrainingRun]):
    """A run as its job tells it: the job is the truth for status, progress and log."""

    status = serializers.CharField(source="job.status", read_only=True)
    progress = serializers.IntegerField(source="job.progress", read_only=True)
    message = serializers.CharField(source="job.message", read_only=True)
    error = serializers.CharField(source="job.error", read_only=True)
    log = serializers.ListField(
        child=serializers.CharField(), source="job.log_lines", read_only=True
    )
    is_active = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(source="job.started_at", read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(
        source="job.finished_at", read_only=True, allow_null=True
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "machine",
            "job",
            "status",
            "progress",
            "message",
            "error",
            "log",
            "is_active",
            "seed",
            "time_budget_s",
            "max_candidates",
            "candidates",
            "best_score",
            "best_estimator",
            "version",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_is_active(self, run: TrainingRun) -> bool:
        return run.is_active and not run.job.is_finished

    def get_version(self, run: TrainingRun) -> int | None:
        """The number of the version this run produced, if any."""
        version = getattr(run, "version", None)
        return version.number if version is not None else None


class VersionOutputSerializer(serializers.ModelSerializer[ModelVersion]):
    is_active = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField(
        help_text="The aliases naming this version (champion, challenger…), by name."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "number",
            "is_active",
            "outcome",
            "run",
            "inputs",
            "outputs",
            "threshold",
            "reproducibility",
            "aliases",
            "created_at",
        ]

    def get_aliases(self, version: ModelVersion) -> list[str]:
        # Lists prefetch them (selectors.versions_for_machine): no query per row.
        return sorted(alias.name for alias in version.aliases.all())

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_outputs(self, version: ModelVersion) -> list[dict[str, Any]]:
        """Per output its record; `baseline` (the majority class's or training mean's metrics)
        is null for versions recorded before baselines were measured."""
        return [{**output, "baseline": output.get("baseline")} for output in version.outputs]

    def get_is_active(self, version: ModelVersion) -> bool:
        if "active_version_id" in self.context:  # lists pass it: no query per row
            return bool(version.pk == self.context["active_version_id"])
        return bool(version.pk == version.machine.active_version_id)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "A column name."},
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "A column name."},
                    # Tables' tasks, and images' (the one output of a model of images).
                    "task": {"type": "string", "enum": [*TASKS, *IMAGE_TASKS]},
                    "metric": {"type": "string"},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        ]
    }
)
class OutputItemField(serializers.JSONField):
    """One output of a model: a column name, or an object naming it with its task and metric
    (the service checks the object's keys and values)."""

    default_error_messages = {
        "invalid": "An output is a column name, or an object with a name and optionally a "
        "task and a metric.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str | dict):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[arg-type]


class MachineListCreateApi(APIView):
    parser_classes = [JSONParser]

    filterset_class = MachineFilter

    class InputSerializer(serializers.Serializer[Any]):
        name = StrictCharField(required=False, allow_blank=True, max_length=200)
        description = StrictCharField(required=False, allow_blank=True)
        dataset = serializers.IntegerField()
        outputs = serializers.ListField(
            child=OutputItemField(),
            help_text="Column names, or objects {name, task, metric} (task and metric optional). "
            "A model of an image dataset predicts `label` (classification, accuracy) or `mask` "
            "(segmentation, dice), from the dataset's task, from the input `image`.",
        )
        inputs = serializers.ListField(child=StrictCharField(), required=False)
        level = serializers.IntegerField(required=False, allow_null=True)
        time_budget_s = serializers.IntegerField(required=False, allow_null=True)
        metric = StrictCharField(required=False)

    @extend_schema(responses=MachineOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        machines = filter_queryset(
            request=request,
            queryset=selectors.machines_for_caller(caller=api_caller(request)),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=machines, serializer_class=MachineOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: MachineDetailOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = api_caller(request)
        dataset = access_dataset(caller=caller, id=data["dataset"], action=Action.CHANGE)
        machine = services.machine_create(
            caller=caller,
            dataset=dataset,
            outputs=data["outputs"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            inputs=data.get("inputs"),
            level=data.get("level"),
            time_budget_s=data.get("time_budget_s"),
            metric=data.get("metric"),
        )
        machine = selectors.access_machine(caller=caller, id=machine.pk)
        return Response(MachineDetailOutputSerializer(machine).data, status=status.HTTP_201_CREATED)


class MachineDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(serializers.Serializer[Any]):
        name = StrictCharField(required=False, max_length=200)
        description = StrictCharField(required=False, allow_blank=True)
        outputs = serializers.ListField(child=OutputItemField(), required=False)
        inputs = serializers.ListField(child=StrictCharField(), required=False)
        level = serializers.IntegerField(required=False, allow_null=True)
        time_budget_s = serializers.IntegerField(required=False, allow_null=True)
        metric = StrictCharField(required=False)
        dataset = serializers.IntegerField(
            required=False,
            help_text="Another dataset of the model's team with every input and output column "
            "in a compatible type (400 `incompatible_dataset` lists the missing and mistyped "
            "columns).",
        )

    @extend_schema(responses=MachineDetailOutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return Response(MachineDetailOutputSerializer(machine).data)

    @extend_schema(request=UpdateSerializer, responses=MachineDetailOutputSerializer)
    def patch(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(
            caller=api_caller(request), id=machine_id, action=Action.CHANGE
        )
        serializer = self.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise ApplicationError(
                "Nothing to change: send name, description, outputs, inputs, level, "
                "time_budget_s, metric and/or dataset."
            )
        changes = dict(serializer.validated_data)
        if "dataset" in changes:
            # Another team's dataset is not found, whatever the caller's role there.
            changes["dataset"] = access_dataset_of_team(
                caller=api_caller(request),
                id=changes["dataset"],
                team_id=machine.team_id,
                action=Action.CHANGE,
            )
        services.machine_update(machine=machine, caller=api_caller(request), **changes)
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return Response(MachineDetailOutputSerializer(machine).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(
            caller=api_caller(request), id=machine_id, action=Action.CHANGE
        )
        services.machine_delete(caller=api_caller(request), machine=machine)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MachineStartTrainingApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)

    @extend_schema(request=InputSerializer, responses={202: RunOutputSerializer})
    def post(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(
            caller=api_caller(request), id=machine_id, action=Action.CHANGE
        )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.training_start(
            caller=api_caller(request),
            machine=machine,
            seed=serializer.validated_data.get("seed", 0),
        )
        run = selectors.access_run(caller=api_caller(request), id=run.pk)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class MachineTrainingStatusApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        class ActiveVersionSerializer(serializers.Serializer[Any]):
            number = serializers.IntegerField()
            outcome = serializers.CharField()
            outputs = serializers.ListField(child=serializers.DictField())
            created_at = serializers.DateTimeField()

        status = serializers.CharField(help_text="untrained, training, ready or failed")
        progress = serializers.IntegerField(allow_null=True)
        candidates = serializers.IntegerField(allow_null=True)
        best_score = serializers.FloatField(allow_null=True)
        best_estimator = serializers.CharField(allow_null=True)
        run = RunOutputSerializer(allow_null=True)
        active_version = ActiveVersionSerializer(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        state = selectors.machine_training_status(machine=machine)
        run, version = state["run"], state["active_version"]
        data = {
            "status": state["status"],
            "progress": run.job.progress if run else None,
            "candidates": run.candidates if run else None,
            "best_score": run.best_score if run else None,
            "best_estimator": (run.best_estimator or None) if run else None,
            "run": run,
            "active_version": None
            if version is None
            else {
                "number": version.number,
                "outcome": version.outcome,
                # The metrics, without the long leaderboard and importance lists.
                "outputs": [
                    {
                        key: output.get(key)
                        for key in ("name", "task", "metric", "metrics", "baseline")
                    }
                    for output in version.outputs
                ],
                "created_at": version.created_at,
            },
        }
        return Response(self.OutputSerializer(data).data)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOutputSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.access_run(caller=api_caller(request), id=run_id)
        return Response(RunOutputSerializer(run).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses=RunOutputSerializer)
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.access_run(caller=api_caller(request), id=run_id, action=Action.CHANGE)
        services.training_cancel(run=run)
        run = selectors.access_run(caller=api_caller(request), id=run_id)
        return Response(RunOutputSerializer(run).data)


class MachineVersionListApi(APIView):
    @extend_schema(responses=VersionOutputSerializer(many=True))
    def get(self, request: Request, machine_id: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.versions_for_machine(machine=machine),
            serializer_class=VersionOutputSerializer,
            context={"active_version_id": machine.active_version_id},
        )


# The bounds are exclusive: OpenAPI 3.0 says so with boolean exclusiveMinimum/Maximum, which
# drf-spectacular does not derive from a FloatField, so clients' generators (and schemathesis)
# would send 0 or 1 as valid.
@extend_schema_field(
    {
        "type": "number",
        "format": "double",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": True,
    }
)
class ThresholdField(serializers.FloatField):
    pass


class MachineVersionDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(serializers.Serializer[Any]):
        threshold = ThresholdField(
            allow_null=True,
            help_text="Decision threshold of two-class outputs, 0 < threshold < 1: the positive "
            "class is predicted when its probability is at least this. null: the more probable "
            "class.",
        )

    @extend_schema(responses=VersionOutputSerializer)
    def get(self, request: Request, machine_id: int, number: int) -> Response:
        machine = selectors.access_machine(caller=api_caller(request), id=machine_id)
        version = selectors.access_version(machine=machine, number=number)
        return Response(
            VersionOutputSerializer(
                version, context={"active_version_id": machine.active_version_id}
            ).data
        )

    @extend_schema(request=UpdateSerializer, responses=VersionOutputSerializer)
    def patch(self, request: Request, machine_id: int, number: int) -> Response:
        machine = selectors.access_machine(
            caller=api_caller(request), id=machine_id, action=Action.CHANGE
        )
        version = selectors.access_version(machine=machine, number=number)
        # A PATCH changes what it names; an empty one changes nothing.
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if "threshold" in serializer.validated_data:
            services.version_set_threshold(
                caller=api_caller(request),
                version=version,
                threshold=serializer.validated_data["threshold"],
            )
        return Response(
            VersionOutputSerializer(
                version, context={"active_version_id": machine.active_version_id}
            ).data
        )


class MachineVersionActivateApi(APIView):
    @extend_schema(request=None, responses=VersionOutputSerializer)
    def post(self, request: Request, machine_id: int, number: int) -> Response:
        machine = selectors.access_machine(
            caller=api_caller(request), id=machine_id, action=Action.CHANGE
        )
        version = selectors.access_version(machine=machine, number=number)
        services.version_activate(caller=api_caller(request), machine=machine, version=version)
        return Response(
            VersionOutputSerializer(version, context={"active_version_id": version.pk}).data
        )
