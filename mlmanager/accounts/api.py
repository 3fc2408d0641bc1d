"""API v1: sign-up, tokens, the caller, teams and members."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlmanager.accounts import selectors, services
from mlmanager.accounts.authentication import api_caller
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team, User
from mlmanager.accounts.requests import api_user
from mlmanager.core.api import StrictCharField
from mlmanager.core.pagination import paginated_response
from mlmanager.core.throttling import (
    SignupAddressThrottle,
    SignupEmailThrottle,
    TokenCreateAddressThrottle,
    client_address,
)


class CredentialsApi(APIView):
    """Endpoints that take an e-mail address and password instead of a session or token.
    Each names its own throttles (core.throttling); failed sign-ins also count towards the
    login lockout (accounts.lockout)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []


class CredentialsInputSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()
    password = StrictCharField(write_only=True)


class TeamOutputSerializer(serializers.ModelSerializer[Team]):
    class Meta:
        model = Team
        fields = ["id", "name", "created_at"]


class TeamWithRoleOutputSerializer(TeamOutputSerializer):
    """A team from `teams_with_role_for_caller`, with the caller's role in it."""

    role = serializers.CharField(read_only=True)

    class Meta(TeamOutputSerializer.Meta):
        fields = [*TeamOutputSerializer.Meta.fields, "role"]


class UserOutputSerializer(serializers.ModelSerializer[User]):
    name = serializers.CharField(source="get_full_name")

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "name",
            *User.PREFERENCE_FIELDS,
        ]


class SignupApi(CredentialsApi):
    throttle_classes = [SignupAddressThrottle, SignupEmailThrottle]

    class InputSerializer(CredentialsInputSerializer):
        # Django's MinimumLengthValidator's default, in the schema; its other validators
        # (common, numeric, like the e-mail address) the schema cannot state.
        password = StrictCharField(write_only=True, min_length=8)
        name = StrictCharField(required=False, allow_blank=True, max_length=300)

    class OutputSerializer(serializers.Serializer[Any]):
        detail = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request) -> Response:
        """The same answer whether or not the address has an account; the rest (an activation
        link, or a note to the account's owner) goes to the address by e-mail."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_signup(**serializer.validated_data)
        detail = _("Check your e-mail: we sent the address a link to finish signing up.")
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class TokenCreateApi(CredentialsApi):
    throttle_classes = [TokenCreateAddressThrottle]

    class InputSerializer(CredentialsInputSerializer):
        name = StrictCharField(required=False, max_length=100, default="API login")

    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.authenticate_credentials(
            request=request._request,
            email=serializer.validated_data["email"],
            password=serializer.validated_data["password"],
        )
        # Proved by e-mail and password, as a browser's session is: recorded as one.
        caller = Caller.for_session(user, address=client_address(request))
        _token, raw = services.api_token_create(
            caller=caller, name=serializer.validated_data["name"]
        )
        return Response({"token": raw}, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    class OutputSerializer(UserOutputSerializer):
        current_team = TeamOutputSerializer(allow_null=True)
        teams = serializers.SerializerMethodField()

        class Meta(UserOutputSerializer.Meta):
            fields = [*UserOutputSerializer.Meta.fields, "current_team", "teams"]

        @extend_schema_field(TeamWithRoleOutputSerializer(many=True))
        def get_teams(self, user: User) -> Any:
            teams = selectors.teams_with_role_for_caller(caller=self.context["caller"])
            return TeamWithRoleOutputSerializer(teams, many=True).data

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        user = api_user(request)
        caller = api_caller(request)
        user.current_team = selectors.current_team_for(caller=caller)
        return Response(self.OutputSerializer(user, context={"caller": caller}).data)


class TeamListCreateApi(APIView):
    class InputSerializer(serializers.Serializer[Any]):
        name = StrictCharField(max_length=100)

    OutputSerializer = TeamWithRoleOutputSerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.teams_with_role_for_caller(caller=api_caller(request)),
            serializer_class=self.OutputSerializer,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = services.team_create(
            caller=api_caller(request), name=serializer.validated_data["name"]
        )
        team.role = Membership.Role.OWNER  # type: ignore[attr-defined] # as the service made it
        return Response(self.OutputSerializer(team).data, status=status.HTTP_201_CREATED)


class TeamMemberListApi(APIView):
    class OutputSerializer(serializers.ModelSerializer[Membership]):
        user_id = serializers.IntegerField()
        email = serializers.EmailField(source="user.email")
        name = serializers.CharField(source="user.get_full_name")

        class Meta:
            model = Membership
            fields = ["id", "user_id", "email", "name", "role", "created_at"]

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, team_id: int) -> Response:
        team = selectors.access_team(caller=api_caller(request), id=team_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.team_members(team=team),
            serializer_class=self.OutputSerializer,
        )
