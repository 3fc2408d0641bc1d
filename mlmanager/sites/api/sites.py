"""Sites: CRUD, status, production, emergency stop, members, device keys."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.selectors import access_team, current_team_for, team_members
from mlmanager.core.api import IdField, StrictCharField
from mlmanager.core.errors import NotFound
from mlmanager.core.filters import filter_queryset
from mlmanager.core.pagination import paginated_response
from mlmanager.core.parsers import JSONParser
from mlmanager.sites import selectors
from mlmanager.sites.access import SiteAction
from mlmanager.sites.api.serializers import (
    CommandOutputSerializer,
    DeviceKeyOutputSerializer,
    FiniteFloatField,
    MemberOutputSerializer,
    ProductionOutputSerializer,
    SiteAlertOutputSerializer,
    SiteOutputSerializer,
    SiteRoleField,
    SiteStatusField,
    duplicate_is_conflict,
)
from mlmanager.sites.filters import SiteFilter
from mlmanager.sites.services import sites as site_services

# --- sites --------------------------------------------------------------------------------------


class SiteInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=120)
    location = StrictCharField(required=False, allow_blank=True, max_length=200)
    latitude = FiniteFloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    longitude = FiniteFloatField(required=False, allow_null=True, min_value=-180, max_value=180)
    capacity = FiniteFloatField(required=False, allow_null=True, min_value=0)
    capacity_unit = StrictCharField(required=False, allow_blank=True, max_length=30)
    status = SiteStatusField(required=False)
    description = StrictCharField(required=False, allow_blank=True)


class SiteListCreateApi(APIView):
    parser_classes = [JSONParser]
    filterset_class = SiteFilter

    class InputSerializer(SiteInputSerializer):
        team = serializers.IntegerField(
            required=False, min_value=1, help_text="The team's id (default: the current team)."
        )

    @extend_schema(responses=SiteOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        sites = filter_queryset(
            request=request,
            queryset=selectors.sites_for_caller(api_caller(request)).order_by("name", "pk"),
            filterset_class=self.filterset_class,
        )
        return paginated_response(
            request=request, view=self, queryset=sites, serializer_class=SiteOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: SiteOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller = api_caller(request)
        team_id = data.pop("team", None)
        team = (
            access_team(caller=caller, id=team_id) if team_id else current_team_for(caller=caller)
        )
        if team is None:
            raise NotFound()
        try:
            site = site_services.site_create(caller=caller, team=team, **data)
        except DjangoValidationError as error:
            duplicate_is_conflict(error)
            raise
        return Response(SiteOutputSerializer(site).data, status=status.HTTP_201_CREATED)


class SiteDetailApi(APIView):
    parser_classes = [JSONParser]

    class UpdateSerializer(SiteInputSerializer):
        name = StrictCharField(required=False, max_length=120)

    @extend_schema(responses=SiteOutputSerializer)
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return Response(SiteOutputSerializer(site).data)

    @extend_schema(request=UpdateSerializer, responses=SiteOutputSerializer)
    def patch(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.UpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            site = site_services.site_update(caller=caller, site=site, **serializer.validated_data)
        except DjangoValidationError as error:
            duplicate_is_conflict(error)
            raise
        return Response(SiteOutputSerializer(site).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        site_services.site_delete(caller=caller, site=site)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteStatusApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        class LatestReadingSerializer(serializers.Serializer[Any]):
            value = serializers.FloatField(allow_null=True)
            unit = serializers.CharField()
            timestamp = serializers.DateTimeField(allow_null=True)
            quality = serializers.CharField(allow_blank=True, help_text="good, uncertain or bad")
            state = serializers.ChoiceField(choices=["ok", "warning", "critical", "stale"])

        site = SiteOutputSerializer()
        latest_readings = serializers.DictField(
            child=LatestReadingSerializer(), help_text="By sensor id (as text), active sensors."
        )
        open_alerts = SiteAlertOutputSerializer(many=True)
        efficiency = serializers.FloatField(
            allow_null=True, help_text="Today's production / capacity."
        )
        last_updated = serializers.DateTimeField(
            allow_null=True, help_text="The newest reading's time."
        )

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        state = selectors.site_status(site=site)
        data = {
            "site": site,
            "latest_readings": {
                str(sensor.pk): {
                    "value": sensor.last_value,
                    "unit": sensor.unit,
                    "timestamp": sensor.last_timestamp,
                    "quality": sensor.last_quality,
                    "state": state.states[sensor.pk],
                }
                for sensor in state.sensors
            },
            "open_alerts": state.open_alerts,
            "efficiency": state.efficiency,
            "last_updated": state.last_updated,
        }
        return Response(self.OutputSerializer(data).data)


class SiteStartProductionApi(APIView):
    @extend_schema(request=None, responses=SiteOutputSerializer)
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        site = site_services.site_start_production(caller=caller, site=site)
        return Response(SiteOutputSerializer(site).data)


class SiteEmergencyStopApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        reason = StrictCharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(request=InputSerializer, responses=CommandOutputSerializer)
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        # No body is no reason; a body that is not an object is refused.
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = site_services.site_emergency_stop(
            caller=caller, site=site, reason=serializer.validated_data.get("reason", "")
        )
        # Published after the commit: read the row again for published_at / error.
        command = selectors.site_commands(site=site).get(pk=command.pk)
        return Response(CommandOutputSerializer(command).data)


class SiteMemberListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        user = IdField(help_text="A member of the site's team.")
        role = SiteRoleField()

    @extend_schema(responses=MemberOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_members(site=site),
            serializer_class=MemberOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses=MemberOutputSerializer,
        description="Give a member of the team a role on the site, or change it.",
    )
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if (
            not team_members(team=site.team)
            .filter(user_id=serializer.validated_data["user"])
            .exists()
        ):
            # Users outside the team are not found, as other teams' ids are.
            raise NotFound(
                _("The site's team has no member with this id."), code="not_a_team_member"
            )
        membership = site_services.site_member_set(
            caller=caller,
            site=site,
            user_id=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )
        membership = selectors.site_members(site=site).get(pk=membership.pk)
        return Response(MemberOutputSerializer(membership).data)


class SiteMemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, site_id: int, user_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        if not selectors.site_members(site=site).filter(user_id=user_id).exists():
            raise NotFound()
        site_services.site_member_remove(caller=caller, site=site, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteDeviceKeyListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        name = StrictCharField(required=False, allow_blank=True, max_length=100)

    class CreatedSerializer(DeviceKeyOutputSerializer):
        key = serializers.CharField(
            read_only=True, help_text="The raw key: shown this once, only its hash is kept."
        )

        class Meta(DeviceKeyOutputSerializer.Meta):
            fields = [*DeviceKeyOutputSerializer.Meta.fields, "key"]

    @extend_schema(responses=DeviceKeyOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(
            caller=api_caller(request), id=site_id, action=SiteAction.MANAGE
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_device_keys(site=site),
            serializer_class=DeviceKeyOutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = site_services.device_key_create(
            caller=caller, site=site, name=serializer.validated_data.get("name", "")
        )
        key.key = raw  # type: ignore[attr-defined]
        return Response(self.CreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class SiteDeviceKeyDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke the key (it stays listed).")
    def delete(self, request: Request, site_id: int, key_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.MANAGE)
        key = selectors.site_device_keys(site=site).filter(pk=key_id).first()
        if key is None:
            raise NotFound()
        site_services.device_key_revoke(caller=caller, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteProductionListApi(APIView):
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer[Any]):
        date = serializers.DateField()
        actual = FiniteFloatField(min_value=0, help_text="What the site produced that day.")

    @extend_schema(responses=ProductionOutputSerializer(many=True))
    def get(self, request: Request, site_id: int) -> Response:
        site = selectors.access_site(caller=api_caller(request), id=site_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.site_production(site=site).select_related("site"),
            serializer_class=ProductionOutputSerializer,
        )

    @extend_schema(
        request=InputSerializer,
        responses=ProductionOutputSerializer,
        description="Record what the site produced on a day (again: correct it).",
    )
    def post(self, request: Request, site_id: int) -> Response:
        caller = api_caller(request)
        site = selectors.access_site(caller=caller, id=site_id, action=SiteAction.OPERATE)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = site_services.production_record(
            caller=caller,
            site=site,
            on=serializer.validated_data["date"],
            actual=serializer.validated_data["actual"],
        )
        record.site = site
        return Response(ProductionOutputSerializer(record).data)
