"""API v1 for image predictions: review, the PDF report, the stored image and mask, and a
segmentation batch's masks. Every id goes through the team-scoped access_prediction (or
access_batch): another team's id is "not found", for files as for rows."""

from __future__ import annotations

import io
from typing import Any

from django.http import FileResponse, HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.core.access import Action
from mlmanager.core.api import StrictCharField
from mlmanager.core.errors import NotFound
from mlmanager.core.parsers import JSONParser
from mlmanager.predictions import image_batches, images, reports, reviews, selectors
from mlmanager.predictions.api import PredictionOutputSerializer
from mlmanager.predictions.models import Prediction, ReviewStatus

PREDICTION_ID = OpenApiParameter("prediction_id", str, OpenApiParameter.PATH)


class PredictionReviewApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=ReviewStatus.choices)
        label = StrictCharField(  # type: ignore[assignment]
            required=False,
            allow_blank=True,
            max_length=200,
            help_text="With `corrected`: the true label, one of the model's classes.",
        )
        note = StrictCharField(required=False, allow_blank=True, max_length=reviews.NOTE_MAX_LENGTH)

    @extend_schema(
        request=InputSerializer, responses=PredictionOutputSerializer, parameters=[PREDICTION_ID]
    )
    def post(self, request: Request, prediction_id: str) -> Response:
        caller = api_caller(request)
        prediction = selectors.access_prediction(
            caller=caller, id=prediction_id, action=Action.CHANGE
        )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        prediction = reviews.prediction_review(
            caller=caller,
            prediction=prediction,
            status=values["status"],
            label=values.get("label"),
            note=values.get("note", ""),
        )
        return Response(PredictionOutputSerializer(prediction, context={"request": request}).data)


def image_prediction_of(request: Any, prediction_id: str, caller: Any) -> Prediction:
    """An image prediction the caller may see; a table row's is "not found" here."""
    prediction = selectors.access_prediction(caller=caller, id=prediction_id)
    if not prediction.is_image:
        raise NotFound(_("This prediction has no image."))
    return prediction


def png_response(content: bytes | None) -> HttpResponse:
    if content is None:
        raise NotFound(_("This file is no longer stored."))
    response = HttpResponse(content, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"  # never changes once written
    return response


def pdf_response(prediction: Prediction, time_zone: Any = None) -> FileResponse:
    content = reports.prediction_report_pdf(prediction, time_zone=time_zone)
    return FileResponse(
        io.BytesIO(content),
        as_attachment=True,
        filename=reports.report_file_name(prediction),
        content_type="application/pdf",
    )


class PredictionReportApi(APIView):
    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY}, parameters=[PREDICTION_ID]
    )
    def get(self, request: Request, prediction_id: str) -> FileResponse:
        prediction = image_prediction_of(request, prediction_id, api_caller(request))
        return pdf_response(prediction)


class PredictionImageApi(APIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY}, parameters=[PREDICTION_ID])
    def get(self, request: Request, prediction_id: str) -> HttpResponse:
        prediction = image_prediction_of(request, prediction_id, api_caller(request))
        return png_response(images.read_file(prediction.image))


class PredictionMaskApi(APIView):
    @extend_schema(
        description="A segmentation's mask: PNG, one channel, pixel value = class index.",
        responses={(200, "image/png"): OpenApiTypes.BINARY},
        parameters=[PREDICTION_ID],
    )
    def get(self, request: Request, prediction_id: str) -> HttpResponse:
        prediction = image_prediction_of(request, prediction_id, api_caller(request))
        if "areas" not in prediction.answer():
            raise NotFound(_("This prediction is not a segmentation: it has no mask."))
        return png_response(images.read_file(prediction.mask_path))


class BatchPredictionMasksApi(APIView):
    @extend_schema(
        description="A segmentation batch's masks: a zip of PNGs named after the images.",
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("batch_id", int, OpenApiParameter.PATH)],
    )
    def get(self, request: Request, batch_id: int) -> FileResponse:
        batch = selectors.access_batch(caller=api_caller(request), id=batch_id)
        return image_batches.masks_file_response(batch)
