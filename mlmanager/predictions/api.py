"""API v1: predict rows (or images), the prediction log and feedback, batch predictions.
Reviews, reports and the stored images of image predictions are in `api_images`."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import (
    BearerTokenAuthentication,
    api_caller,
    set_request_caller,
)
from mlmanager.accounts.services import api_token_touch
from mlmanager.billing.services.ledger import billing_enabled
from mlmanager.billing.throttling import TeamApiRateThrottle
from mlmanager.core import storage
from mlmanager.core.access import Action
from mlmanager.core.api import StrictCharField
from mlmanager.core.errors import ApplicationError, NotFound, PayloadTooLarge
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser, MultiPartParser, refuse_nul_in_json
from mlmanager.core.throttling import PredictRateThrottle, client_address
from mlmanager.core.uploads import raise_if_upload_too_large
from mlmanager.datasets import files
from mlmanager.datasets.api import DatasetDetailOutputSerializer
from mlmanager.datasets.selectors import access_dataset_of_team
from mlmanager.machines.selectors import (
    PredictGrant,
    access_machine,
    access_machine_to_predict,
    predict_grant_for_token,
)
from mlmanager.predictions import (
    batches,
    experimenter,
    image_batches,
    images,
    selectors,
    services,
    serving,
)
from mlmanager.predictions.filters import PredictionFilter
from mlmanager.predictions.models import BatchPrediction, Prediction

# Where orjson stops at NaN or Infinity (after a minus sign it points at the "I").
_NOT_A_JSON_NUMBER = re.compile(r"NaN|Infinity")


class PredictJSONParser(BaseParser):
    """Strict JSON (orjson: NaN and Infinity refused) with the body capped at
    MLMANAGER_PREDICT_MAX_BODY_BYTES: the declared length is checked before reading, the
    actual length while reading. NUL characters are refused as by every API parser
    (core.parsers): the prediction log could not store them."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.MLMANAGER_PREDICT_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise _too_large(limit)
        try:
            parsed = orjson.loads(body)  # strict: NaN, Infinity and 1e999 are errors
        except orjson.JSONDecodeError as error:
            message = _("The body is not valid JSON: %(error)s.") % {"error": error}
            if _NOT_A_JSON_NUMBER.match(error.doc, error.pos) or "infinity" in error.msg:
                message += " " + _(
                    "NaN and Infinity are not JSON numbers: send null for a missing value."
                )
            raise ApplicationError(message, code="invalid_json") from None
        refuse_nul_in_json(body, parsed)
        return parsed


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        _(
            "The request body is larger than %(mb)s MB. Send fewer rows per request, "
            "or use a batch prediction."
        )
        % {"mb": limit // 2**20}
    )


class PredictionWarningSerializer(serializers.Serializer[Any]):
    row = serializers.IntegerField()
    field = serializers.CharField()
    code = serializers.ChoiceField(choices=["out_of_range", "unseen_category", "not_integer"])
    message = serializers.CharField()


IDEMPOTENCY_KEY_MAX_LENGTH = 200
# Keys the platform writes itself (a batch's charge): a client's key may not take them.
RESERVED_IDEMPOTENCY_PREFIXES = ("batch:",)
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="With billing on: a retried request with the same key is charged once (at "
    f"most {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters).",
)


def idempotency_key_of(request: Request) -> str:
    """The request's `Idempotency-Key` header, stripped ("" when absent); 400 when it is
    longer than IDEMPOTENCY_KEY_MAX_LENGTH, holds control characters or a reserved prefix.
    With billing off nothing is charged, so the header is ignored (as it was before billing)."""
    if not billing_enabled():
        return ""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if (
        len(key) > IDEMPOTENCY_KEY_MAX_LENGTH
        or not key.isprintable()
        or key.startswith(RESERVED_IDEMPOTENCY_PREFIXES)
    ):
        raise ApplicationError(
            _(
                "The Idempotency-Key header must be at most %(length)s printable characters "
                "and not start with %(prefixes)s."
            )
            % {
                "length": IDEMPOTENCY_KEY_MAX_LENGTH,
                "prefixes": ", ".join(RESERVED_IDEMPOTENCY_PREFIXES),
            },
            code="invalid_idempotency_key",
            details={"header": "Idempotency-Key"},
        )
    return key


class ModelPredictApi(APIView):
    # JSON rows for a table model; multipart images for an image model (the view checks the
    # content type against the model's kind before reading the body).
    parser_classes = [PredictJSONParser, MultiPartParser]
    # Its own limit, higher than the rest of the API's; the team's plan counts it as any call.
    throttle_classes = [PredictRateThrottle, TeamApiRateThrottle]
    # orjson writes a 1 000-row answer in ~0.3 ms where the standard encoder takes ~5 ms.
    renderer_classes = [ORJSONRenderer]

    class QuerySerializer(serializers.Serializer[Any]):
        version = serializers.IntegerField(required=False, min_value=1)
        alias = serializers.CharField(
            required=False,
            max_length=40,
            help_text="Predict with the version this alias names (champion, challenger…); "
            "not with `version`.",
        )

    class InputSerializer(serializers.Serializer[Any]):
        required_one_of = ("rows", "columns")  # documented; the service refuses both or none

        rows = serializers.ListField(child=serializers.DictField(), required=False)
        columns = serializers.DictField(child=serializers.ListField(), required=False)

    class OutputSerializer(serializers.Serializer[Any]):
        model = serializers.IntegerField()
        model_version = serializers.IntegerField()
        predictions = serializers.ListField(child=serializers.DictField())
        warnings = serializers.ListField(
            child=PredictionWarningSerializer(),
            help_text="Values the model answered for though training saw none like them: "
            "out_of_range, unseen_category, not_integer. `row` is the row's index in the "
            "request (from 0).",
        )
        timing_ms = serializers.DictField(child=serializers.FloatField())
        by_rules = serializers.BooleanField(
            required=False,
            help_text="Present (true) when the model has no version yet and its experimenter "
            "rules answered; `model_version` is then 0.",
        )

    class ImageInputSerializer(serializers.Serializer[Any]):
        image = serializers.ListField(
            child=serializers.FileField(),
            help_text="One or more images (PNG, JPEG, TIFF, BMP, DICOM; the type is read from "
            "the content), at most MLMANAGER_PREDICT_MAX_IMAGES per request. Each is checked, "
            "held to the pixel limit and re-encoded; the answer lists them in the same order.",
        )

    class ImageOutputSerializer(serializers.Serializer[Any]):
        model = serializers.IntegerField()
        model_version = serializers.IntegerField()
        task = serializers.ChoiceField(choices=["classification", "segmentation"])
        predictions = serializers.ListField(
            child=serializers.DictField(),
            help_text="Per image: `id`, `name` (as sent), then for a class `label`, "
            "`confidence`, `probabilities` {label: p}, for a segmentation `mask_url` (the "
            "mask PNG, pixel value = class index) and `areas` {class: share of pixels}; both "
            "with `votes` [{member, label, confidence}], `agreement` (0..1) and "
            "`needs_review`.",
        )
        timing_ms = serializers.DictField(child=serializers.FloatField())

    def perform_authentication(self, request: Request) -> None:
        """A bearer token is checked together with the model of the URL, in one query
        (machines' predict_grant_for_token); `request.auth` is then the PredictGrant. A
        signed-in session goes the usual way (the view then looks the model up itself)."""
        raw = BearerTokenAuthentication().bearer_token(request)
        if raw is None:
            super().perform_authentication(request)
            return
        grant = predict_grant_for_token(
            raw_token=raw, machine_id=self.kwargs["machine_id"], address=client_address(request)
        )
        if grant is None:
            raise BearerTokenAuthentication.refused()
        if grant.token_last_used_is_stale:
            api_token_touch(token_id=grant.token_id)
        set_request_caller(request, grant.caller)
        request.user, request.auth = grant.user, grant

    @extend_schema(
        parameters=[QuerySerializer, IDEMPOTENCY_KEY_PARAMETER],
        request={
            "application/json": InputSerializer,
            "multipart/form-data": ImageInputSerializer,
        },
        responses={
            200: PolymorphicProxySerializer(
                component_name="PredictOutput",
                serializers=[OutputSerializer, ImageOutputSerializer],
                resource_type_field_name=None,
            )
        },
    )
    def post(self, request: Request, machine_id: int) -> Response:
        started = time.perf_counter()
        idempotency_key = idempotency_key_of(request)
        grant = request.auth if isinstance(request.auth, PredictGrant) else None
        if grant is None:  # a signed-in session
            machine = access_machine_to_predict(caller=api_caller(request), id=machine_id)
        elif grant.machine is None:
            raise NotFound()
        else:
            machine = grant.machine
        if experimenter.answers_by_rules_now(
            machine=machine,
            number=request.query_params.get("version"),
            alias=request.query_params.get("alias"),
        ):
            return Response(
                experimenter.predictions_make_by_rules(
                    machine=machine,
                    payload=request.data,
                    caller=api_caller(request),
                    source=Prediction.Source.API,
                    started=started,
                    idempotency_key=idempotency_key,
                )
            )
        version = services.version_for_prediction(
            machine=machine,
            number=request.query_params.get("version"),
            alias=request.query_params.get("alias"),
        )
        # Told from the loaded version (cached: no query) before the body is read.
        served = serving.served_any(version)
        sends_files = (request.content_type or "").startswith("multipart/form-data")
        if isinstance(served, serving.ServedImageVersion):
            if not sends_files:
                raise serving.images_not_rows()
            return self._predict_images(request, machine, version, started, idempotency_key)
        if sends_files:
            raise serving.rows_not_images()
        body = services.predictions_make(
            machine=machine,
            version=version,
            payload=request.data,
            caller=api_caller(request),
            source=Prediction.Source.API,
            started=started,
            idempotency_key=idempotency_key,
        )
        return Response(body)

    def _predict_images(
        self, request: Request, machine: Any, version: Any, started: float, idempotency_key: str
    ) -> Response:
        limit = settings.MLMANAGER_PREDICT_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        request.data  # noqa: B018 - parses the body; the size limit is enforced while it streams
        raise_if_upload_too_large(request._request)
        body = images.image_predictions_make(
            machine=machine,
            version=version,
            images=images.read_uploads(request.FILES.getlist("image")),
            caller=api_caller(request),
            source=Prediction.Source.API,
            started=started,
            idempotency_key=idempotency_key,
        )
        for prediction in body["predictions"]:
            if "mask_url" in prediction:
                prediction["mask_url"] = request.build_absolute_uri(prediction["mask_url"])
        return Response(body)


# --- the log and feedback ------------------------------------------------------------------


class PredictionOutputSerializer(serializers.ModelSerializer[Prediction]):
    model = serializers.IntegerField(source="machine_id")
    model_version = serializers.IntegerField(source="version_number")
    user = serializers.EmailField(source="user.email", allow_null=True, default=None)
    reviewed_by = serializers.EmailField(source="reviewed_by.email", allow_null=True, default=None)
    image_url = serializers.SerializerMethodField(
        help_text="An image model's prediction: its image (the PNG the platform re-encoded)."
    )

    class Meta:
        model = Prediction
        fields = [
            "id",
            "model",
            "model_version",
            "source",
            "user",
            "inputs",
            "outputs",
            "latency_ms",
            "feedback",
            "feedback_at",
            "image_url",
            "review_status",
            "review_label",
            "review_note",
            "reviewed_by",
            "reviewed_at",
            "created_at",
        ]

    def get_image_url(self, prediction: Prediction) -> str | None:
        if not prediction.image:
            return None
        url = reverse("api:prediction-image", args=[prediction.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class PredictionListApi(APIView):
    filterset_class = PredictionFilter

    @extend_schema(responses=PredictionOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        predictions = filter_queryset(
            request=request,
            queryset=selectors.predictions_for_caller(caller=api_caller(request)),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=predictions,
            serializer_class=PredictionOutputSerializer,
        )


class PredictionFeedbackApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        actual = serializers.JSONField(
            help_text="The true value, or an object of true values by predicted column."
        )

    @extend_schema(request=InputSerializer, responses=PredictionOutputSerializer)
    def post(self, request: Request, prediction_id: str) -> Response:
        prediction = selectors.access_prediction(
            caller=api_caller(request), id=prediction_id, action=Action.CHANGE
        )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        prediction = services.prediction_feedback(
            caller=api_caller(request),
            prediction=prediction,
            actual=serializer.validated_data["actual"],
        )
        return Response(PredictionOutputSerializer(prediction).data)


class ModelFeedbackDatasetApi(APIView):
    @extend_schema(request=None, responses={202: DatasetDetailOutputSerializer})
    def post(self, request: Request, machine_id: int) -> Response:
        machine = access_machine(caller=api_caller(request), id=machine_id, action=Action.CHANGE)
        dataset = services.feedback_dataset_create(caller=api_caller(request), machine=machine)
        return Response(
            DatasetDetailOutputSerializer(dataset).data, status=status.HTTP_202_ACCEPTED
        )


class ModelFeedbackAppendApi(APIView):
    @extend_schema(
        request=None,
        responses={201: DatasetDetailOutputSerializer},
        description="Append the rows that got feedback since the last append (inputs as sent, "
        "outputs as the true values) to the model's dataset, as a new version of it that the "
        "model's dataset becomes. 409 `no_feedback` when none is new; `incompatible_rows` if "
        "the dataset's columns changed since the predictions.",
    )
    def post(self, request: Request, machine_id: int) -> Response:
        machine = access_machine(caller=api_caller(request), id=machine_id, action=Action.CHANGE)
        dataset = services.feedback_rows_append(caller=api_caller(request), machine=machine)
        return Response(DatasetDetailOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


# --- batches -------------------------------------------------------------------------------


class BatchOutputSerializer(serializers.ModelSerializer[BatchPrediction]):
    model = serializers.IntegerField(source="machine_id")
    model_version = serializers.IntegerField(source="version_number")
    format = serializers.CharField(source="output_format")
    job = serializers.IntegerField(source="job_id")
    status = serializers.CharField(source="job.status")
    progress = serializers.IntegerField(source="job.progress")
    message = serializers.CharField(source="job.message")
    error = serializers.CharField(source="job.error")
    finished_at = serializers.DateTimeField(source="job.finished_at", allow_null=True)
    download_url = serializers.SerializerMethodField()
    masks_url = serializers.SerializerMethodField(
        help_text="A finished segmentation batch (an image model's): its masks, a zip of PNGs."
    )
    warnings = serializers.SerializerMethodField(
        help_text="Once finished: per warning code (as the predict API's warnings), how many "
        "values of the rows training did not see; the rows were predicted all the same."
    )

    class Meta:
        model = BatchPrediction
        fields = [
            "id",
            "model",
            "model_version",
            "dataset",
            "original_filename",
            "pass_through",
            "format",
            "job",
            "status",
            "progress",
            "message",
            "error",
            "row_count",
            "result_size_bytes",
            "download_url",
            "masks_url",
            "warnings",
            "created_at",
            "finished_at",
        ]

    def get_warnings(self, batch: BatchPrediction) -> dict[str, int]:
        return dict((batch.job.result or {}).get("warnings") or {})

    def get_masks_url(self, batch: BatchPrediction) -> str | None:
        if not image_batches.has_masks(batch):
            return None
        url = reverse("api:batch-prediction-masks", args=[batch.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def get_download_url(self, batch: BatchPrediction) -> str | None:
        if batch.job.status != batch.job.Status.SUCCEEDED:
            return None
        url = reverse("api:batch-prediction-download", args=[batch.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class ModelBatchPredictionApi(APIView):
    # A file in a multipart body, or a dataset's id in either; a url-encoded form cannot carry
    # a file and JSON does it all for a dataset.
    parser_classes = [MultiPartParser, JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        # documented; batch_create refuses both or none
        required_one_of: tuple[str, ...] = ("file", "dataset")

        file = serializers.FileField(required=False, allow_empty_file=True)
        dataset = serializers.IntegerField(required=False)
        format = serializers.ChoiceField(
            choices=BatchPrediction.Format.choices, default=BatchPrediction.Format.CSV
        )
        version = serializers.IntegerField(required=False, min_value=1)
        alias = StrictCharField(
            required=False,
            max_length=40,
            help_text="The version this alias names (also `?alias=`); not with `version`.",
        )
        pass_through = serializers.ListField(
            child=StrictCharField(),
            required=False,
            help_text="With a dataset: its columns to copy into the result besides the "
            "model's inputs (default none). An uploaded file's columns are all kept.",
        )

    @extend_schema(responses=BatchOutputSerializer(many=True))
    def get(self, request: Request, machine_id: int) -> Response:
        machine = access_machine(caller=api_caller(request), id=machine_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.batches_for_machine(machine=machine),
            serializer_class=BatchOutputSerializer,
            context={"request": request},
        )

    # The schema of a JSON body, which cannot carry a file (InputSerializer validates it).
    class JSONInputSerializer(InputSerializer):
        required_one_of = ()

        file = None  # type: ignore[assignment]
        dataset = serializers.IntegerField()

    @extend_schema(
        request={
            "multipart/form-data": InputSerializer,
            "application/json": JSONInputSerializer,
        },
        parameters=[
            OpenApiParameter(
                "alias",
                OpenApiTypes.STR,
                required=False,
                description="Predict with the version this alias names; not with `version`.",
            ),
            OpenApiParameter("version", OpenApiTypes.INT, required=False),
        ],
        responses={202: BatchOutputSerializer},
    )
    def post(self, request: Request, machine_id: int) -> Response:
        data = request.data  # parses the body; the size limit is enforced while it streams
        raise_if_upload_too_large(request._request)
        machine = access_machine(caller=api_caller(request), id=machine_id, action=Action.CHANGE)
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        version = services.version_for_prediction(
            machine=machine,
            number=values.get("version", request.query_params.get("version")),
            alias=values.get("alias", request.query_params.get("alias")),
        )
        dataset = None
        if values.get("dataset") is not None:
            dataset = access_dataset_of_team(
                caller=api_caller(request), id=values["dataset"], team_id=machine.team_id
            )
        batch = batches.batch_create(
            machine=machine,
            version=version,
            caller=api_caller(request),
            upload=values.get("file"),
            dataset=dataset,
            output_format=values["format"],
            pass_through=values.get("pass_through"),
        )
        return Response(
            BatchOutputSerializer(batch, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class BatchPredictionDetailApi(APIView):
    @extend_schema(responses=BatchOutputSerializer)
    def get(self, request: Request, batch_id: int) -> Response:
        batch = selectors.access_batch(caller=api_caller(request), id=batch_id)
        return Response(BatchOutputSerializer(batch, context={"request": request}).data)


class BatchPredictionDownloadApi(APIView):
    @extend_schema(
        # FileResponse types the file by its name: CSV as text/csv, Parquet (which Python's
        # mimetypes does not know) as application/octet-stream.
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
        },
        parameters=[OpenApiParameter("batch_id", int, OpenApiParameter.PATH)],
    )
    def get(self, request: Request, batch_id: int) -> FileResponse:
        batch = selectors.access_batch(caller=api_caller(request), id=batch_id)
        return batch_file_response(batch)


def batch_file_response(batch: BatchPrediction) -> FileResponse:
    """The result file of a finished batch, for the API and the pages alike."""
    if batch.job.status != batch.job.Status.SUCCEEDED:
        raise NotFound(_("This batch has no result to download."))
    try:
        # Streamed from the storage in chunks, never read whole into memory.
        stream = files.open_for_reading(batch.result_path)
    except FileNotFoundError:
        raise NotFound(_("This batch has no result to download.")) from None
    return storage.StoredFileResponse(stream, as_attachment=True, filename=batch.download_name)
