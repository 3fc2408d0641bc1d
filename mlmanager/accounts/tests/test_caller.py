"""The `Caller` each entry point builds: the session's, a personal token's, a team token's, a
socket's, and what the team limit does to every read and check."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from mlmanager.accounts.access import access_team_object, team_role
from mlmanager.accounts.authentication import BearerTokenAuthentication, api_caller
from mlmanager.accounts.caller import Caller, Credential
from mlmanager.accounts.middleware import UserPreferencesMiddleware
from mlmanager.accounts.models import Team
from mlmanager.accounts.selectors import access_team, current_team_for, teams_for_caller
from mlmanager.accounts.services import api_token_create
from mlmanager.core.access import Action
from mlmanager.core.errors import NotFound
from mlmanager.core.tests.factories import TeamFactory, member
from mlmanager.jobs.models import Job
from mlmanager.live.consumers import socket_caller

pytestmark = pytest.mark.django_db


def _through_middleware(request: Any) -> Caller:
    seen: dict[str, Caller] = {}

    def view(request: Any) -> HttpResponse:
        seen["caller"] = request.caller
        return HttpResponse()

    UserPreferencesMiddleware(view)(request)
    return seen["caller"]


def _token_request(raw: str, **meta: str) -> Request:
    django_request = APIRequestFactory().get(
        "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}", **meta
    )
    return Request(django_request, authenticators=[BearerTokenAuthentication()])


def test_a_signed_in_page_request_has_the_session_caller() -> None:
    user = member("editor")
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.7")
    request.user = user
    caller = _through_middleware(request)
    assert caller == Caller(
        user=user, credential=Credential.SESSION, team_limit=None, address="198.51.100.7"
    )
    assert caller.is_authenticated and caller.user_id == user.pk


def test_an_anonymous_request_has_a_caller_that_reaches_nothing() -> None:
    member("owner")
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    caller = _through_middleware(request)
    assert (caller.user, caller.user_id, caller.is_authenticated) == (None, None, False)
    assert not teams_for_caller(caller=caller).exists()
    assert not Job.objects.for_caller(caller).exists()


def test_a_personal_token_acts_in_every_team_of_its_user(settings: Any) -> None:
    settings.MLMANAGER_TRUSTED_PROXIES = 1
    user = member("owner")
    second = TeamFactory()
    user.memberships.create(team=second, role="viewer")
    token, raw = api_token_create(caller=Caller.for_session(user), name="personal")
    request = _token_request(
        raw, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"
    )
    caller = api_caller(request)
    assert caller == Caller(
        user=user,
        credential=Credential.PERSONAL_TOKEN,
        team_limit=None,
        address="10.0.0.1",  # the address the one trusted proxy saw, as the lockout counts it
        credential_id=token.pk,
    )
    assert set(teams_for_caller(caller=caller)) == {user.current_team, second}


def test_a_team_token_is_limited_to_its_team() -> None:
    user = member("owner")
    home = user.current_team
    other = TeamFactory()
    user.memberships.create(team=other, role="owner")
    token, raw = api_token_create(caller=Caller.for_session(user), name="team", team=other)
    request = _token_request(raw, REMOTE_ADDR="198.51.100.8")
    caller = api_caller(request)
    assert (caller.credential, caller.team_limit, caller.credential_id) == (
        Credential.TEAM_TOKEN,
        other.pk,
        token.pk,
    )
    assert caller.address == "198.51.100.8"
    # The limit lives on the caller, not on the user: the same user signed in reaches both.
    assert request.user == user and not hasattr(request.user, "restricted_team_id")
    session = Caller.for_session(user)
    assert set(teams_for_caller(caller=session)) == {home, other}
    assert list(teams_for_caller(caller=caller)) == [other]
    assert current_team_for(caller=caller) == other  # the user's chosen team is out of reach
    assert team_role(caller=caller, team_id=home.pk) is None
    assert team_role(caller=session, team_id=home.pk) == "owner"
    with pytest.raises(NotFound):
        access_team(caller=caller, id=home.pk)
    home_job = Job.objects.create(team=home, kind="dataset.process", created_by=user)
    assert access_team_object(Job.objects.all(), caller=session, id=home_job.pk) == home_job
    with pytest.raises(NotFound):
        access_team_object(Job.objects.all(), caller=caller, id=home_job.pk, action=Action.VIEW)


def test_a_team_token_cannot_create_teams_over_the_api() -> None:
    user = member("owner")
    _token, raw = api_token_create(
        caller=Caller.for_session(user), name="team", team=user.current_team
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/api/v1/teams/", {"name": "Escape"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "team_scoped_token"
    assert not Team.objects.filter(name="Escape").exists()
    # Its teams list shows its one team, with the user's role in it.
    listed = client.get("/api/v1/teams/").json()["results"]
    assert [(team["id"], team["role"]) for team in listed] == [(user.current_team_id, "owner")]


def test_the_predict_path_builds_the_same_caller_as_the_token_authentication() -> None:
    from mlmanager.machines.selectors import predict_grant_for_token

    user = member("owner")
    token, raw = api_token_create(
        caller=Caller.for_session(user), name="team", team=user.current_team
    )
    grant = predict_grant_for_token(raw_token=raw, machine_id=1, address="192.0.2.4")
    assert grant is not None and grant.machine is None  # no such model
    assert grant.caller == Caller(
        user=grant.user,
        credential=Credential.TEAM_TOKEN,
        team_limit=user.current_team_id,
        address="192.0.2.4",
        credential_id=token.pk,
    )
    assert grant.user.pk == user.pk and not hasattr(grant.user, "restricted_team_id")
    assert api_caller(_token_request(raw, REMOTE_ADDR="192.0.2.4")) == grant.caller


def test_a_socket_has_its_sessions_caller() -> None:
    user = member("viewer")
    caller = socket_caller({"user": user, "client": ["192.0.2.10", 51000]})
    assert caller == Caller(user=user, credential=Credential.SESSION, address="192.0.2.10")
    assert socket_caller({"user": AnonymousUser(), "client": ["192.0.2.10", 1]}) is None
    assert socket_caller({}) is None


def test_a_task_acting_for_a_user_has_the_users_rights() -> None:
    user = member("editor")
    caller = Caller.acting_for(user)
    assert (caller.credential, caller.team_limit) == (Credential.SYSTEM, None)
    assert access_team(caller=caller, id=user.current_team_id, action=Action.CHANGE)
    with pytest.raises(NotFound):
        access_team(caller=Caller.system(), id=user.current_team_id)
