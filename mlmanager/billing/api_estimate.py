"""API v1: what a model's next training would take and cost (`GET /models/{id}/estimate/`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.billing.money import amount_text
from mlmanager.billing.services.charges import training_estimate
from mlmanager.machines.selectors import access_machine


class ModelTrainingEstimateApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        time_s = serializers.IntegerField(
            help_text="The model's time budget: the longest the training can run."
        )
        cost = serializers.CharField(
            help_text='The budget\'s cost, a decimal string ("0.00" with billing off). The '
            "full amount is held when the training starts; the minutes actually used are "
            "charged when it ends and the rest is released."
        )
        balance_after = serializers.CharField(
            help_text="The team's available credit once the cost is held (a decimal string; "
            "negative: the training would be refused with 402). With billing off, the "
            "available credit as it is."
        )

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, machine_id: int) -> Response:
        machine = access_machine(caller=api_caller(request), id=machine_id)
        estimate = training_estimate(machine=machine)
        return Response(
            {
                "time_s": estimate.time_s,
                "cost": amount_text(estimate.cost),
                "balance_after": amount_text(estimate.balance_after),
            }
        )
