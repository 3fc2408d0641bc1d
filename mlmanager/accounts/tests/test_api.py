from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from mlmanager.accounts.models import ApiToken, Membership, Team, User
from mlmanager.core.tests.factories import PASSWORD, TeamFactory, api_client_for, member

pytestmark = pytest.mark.django_db


def test_signup_creates_inactive_user_and_owned_team() -> None:
    response = APIClient().post(
        "/api/v1/auth/signup/",
        {"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada Lovelace"},
        format="json",
    )
    assert response.status_code == 202
    assert set(response.json()) == {"detail"}  # nothing about the account: see test_signup.py
    user = User.objects.get(email="ada@example.com")
    assert (user.first_name, user.last_name, user.is_active) == ("Ada", "Lovelace", False)
    membership = Membership.objects.select_related("team").get(user=user)
    assert (membership.role, membership.team.name) == ("owner", "Ada's team")
    assert user.current_team_id == membership.team_id


def test_signup_refused_when_closed(settings: object) -> None:
    settings.MLMANAGER_SIGNUP_OPEN = False  # type: ignore[attr-defined]
    response = APIClient().post(
        "/api/v1/auth/signup/", {"email": "a@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signup_closed"
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, 400, "invalid"),
        ({"email": "b@example.com", "password": "123"}, 400, "invalid"),
        ({"email": "b@example.com"}, 400, "invalid"),
    ],
)
def test_signup_bad_input_uses_error_shape(body: dict, status: int, code: str) -> None:
    response = APIClient().post("/api/v1/auth/signup/", body, format="json")
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)


def test_token_login_and_me(owner: User) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("mlm_")
    assert ApiToken.objects.get(user=owner).token_hash != token  # stored hashed

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    me = client.get("/api/v1/me/").json()
    assert me["email"] == owner.email
    assert me["current_team"]["id"] == owner.current_team_id
    assert [(t["id"], t["name"], t["role"]) for t in me["teams"]] == [
        (owner.current_team_id, owner.current_team.name, "owner")
    ]


def test_token_login_wrong_password(owner: User) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": owner.email, "password": "wrong"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_unauthenticated_request_gets_401_shape() -> None:
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("state", ["revoked", "expired", "garbage"])
def test_unusable_tokens_get_401(owner: User, state: str) -> None:
    client = api_client_for(owner)
    token = ApiToken.objects.get(user=owner)
    if state == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    else:
        client.credentials(HTTP_AUTHORIZATION="Bearer mlm_nope")
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_token_records_last_use(owner: User) -> None:
    client = api_client_for(owner)
    assert ApiToken.objects.get(user=owner).last_used_at is None
    client.get("/api/v1/me/")
    assert ApiToken.objects.get(user=owner).last_used_at is not None


def test_team_create_and_list(api: APIClient, owner: User) -> None:
    TeamFactory(name="Someone else's")
    created = api.post("/api/v1/teams/", {"name": "Research"}, format="json")
    assert created.status_code == 201
    assert created.json()["role"] == "owner"
    listed = api.get("/api/v1/teams/").json()
    assert listed["count"] == 2
    assert sorted(t["name"] for t in listed["results"]) == sorted(
        ["Research", owner.current_team.name]
    )


def test_team_members_and_other_team_404(api: APIClient, owner: User) -> None:
    viewer = member("viewer", team=owner.current_team)
    other_team = TeamFactory()
    response = api.get(f"/api/v1/teams/{owner.current_team_id}/members/")
    assert response.status_code == 200
    assert {(m["email"], m["role"]) for m in response.json()["results"]} == {
        (owner.email, "owner"),
        (viewer.email, "viewer"),
    }
    assert api.get(f"/api/v1/teams/{other_team.pk}/members/").status_code == 404
    assert api.get("/api/v1/teams/abc/members/").status_code == 404


def test_team_restricted_token_sees_only_its_team(owner: User) -> None:
    second = TeamFactory()
    Membership.objects.create(team=second, user=owner, role="owner")
    client = api_client_for(owner, team=second)
    teams = client.get("/api/v1/teams/").json()["results"]
    assert [t["id"] for t in teams] == [second.pk]
    assert client.get(f"/api/v1/teams/{owner.current_team_id}/members/").status_code == 404


def test_team_restricted_token_cannot_create_a_team_and_changes_nothing(owner: User) -> None:
    client = api_client_for(owner, team=owner.current_team)
    teams_before = list(Team.objects.values_list("pk", flat=True))

    response = client.post("/api/v1/teams/", {"name": "Sneaky"}, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "team_scoped_token",
            "message": "A token limited to one team cannot create teams.",
            "details": {},
        }
    }
    assert list(Team.objects.values_list("pk", flat=True)) == teams_before
    assert not Membership.objects.filter(team__name="Sneaky").exists()
    owner.refresh_from_db()
    assert owner.current_team_id == teams_before[0]
