from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from mlmanager.accounts.models import ApiToken, Invitation, Membership, User
from mlmanager.core.tests.factories import PASSWORD, TeamFactory, UserFactory, member

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_signup_page_creates_inactive_account_and_says_check_your_email() -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"name": "Grace Hopper", "email": "grace@example.com", "password": PASSWORD},
    )
    assert (response.status_code, response["Location"]) == (302, "/accounts/signup/sent/")
    assert "Check your e-mail" in client.get(response["Location"]).content.decode()
    user = User.objects.get(email="grace@example.com")
    assert not user.is_active
    assert Membership.objects.get(user=user).team.name == "Grace's team"


def test_signup_page_shows_field_errors() -> None:
    User.objects.create_user(email="taken@example.com", password=PASSWORD)
    taken = Client().post("/accounts/signup/", {"email": "taken@example.com", "password": "123"})
    weak = Client().post("/accounts/signup/", {"email": "new@example.com", "password": "123"})
    assert (taken.status_code, weak.status_code) == (200, 200)
    assert "too short" in weak.content.decode()
    assert "too short" in taken.content.decode()
    assert "already exists" not in taken.content.decode()


def test_login_with_email(owner) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/datasets/").status_code == 200


def test_password_reset_sends_link() -> None:
    user = UserFactory(email="reset@example.com")
    Client().post("/accounts/password/reset/", {"email": user.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/password/reset/\S+/", mail.outbox[0].body)
    assert link
    client = Client()
    form = client.get(link.group(0), follow=True)
    assert form.status_code == 200
    response = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")


def test_profile_preferences_change_how_dates_show(owner) -> None:
    client = _client(owner)
    response = client.post(
        "/accounts/profile/",
        {
            "first_name": "Ada",
            "last_name": "L",
            "time_zone": "Asia/Tokyo",
            "time_format": "12",
            "date_order": "DMY",
            "date_separator": ".",
            "decimal_separator": ",",
        },
    )
    assert response.status_code == 302
    page = client.get("/accounts/profile/").content.decode()
    assert re.search(r"\d\d\.\d\d\.\d{4} \d{1,2}:\d\d [AP]M", page)
    assert "1.234.567,89" in page


def test_team_page_invite_join_and_revoke(owner) -> None:
    client = _client(owner)
    team_id = owner.current_team_id
    response = client.post(
        f"/accounts/teams/{team_id}/",
        {"invite": "1", "role": "editor", "max_uses": "", "valid_days": "3", "email": ""},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(team_id=team_id)
    assert invitation.max_uses is None

    newcomer = UserFactory()
    join = _client(newcomer)
    landing = join.get(f"/accounts/invite/{invitation.token}/").content.decode()
    assert "Join the team" in landing
    join.post(f"/accounts/invite/{invitation.token}/")
    assert Membership.objects.get(user=newcomer).role == "editor"

    client.post(f"/accounts/invitations/{invitation.pk}/revoke/")
    late = _client(UserFactory()).get(f"/accounts/invite/{invitation.token}/").content.decode()
    assert "expired, been revoked or already been used" in late


def test_anonymous_invitation_landing_offers_login(owner) -> None:
    invitation = Invitation.objects.create(
        team=owner.current_team,
        token="tok",
        expires_at="2999-01-01T00:00:00Z",
    )
    page = Client().get(f"/accounts/invite/{invitation.token}/").content.decode()
    assert "/accounts/login/?next=/accounts/invite/tok/" in page


def test_manage_members_role_and_remove(owner) -> None:
    editor = member("editor", team=owner.current_team)
    client = _client(owner)
    membership = Membership.objects.get(user=editor)
    client.post(f"/accounts/members/{membership.pk}/", {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == "viewer"
    client.post(f"/accounts/members/{membership.pk}/", {"remove": "1"})
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_editor_cannot_manage_members(owner) -> None:
    editor = member("editor", team=owner.current_team)
    response = _client(editor).post(
        f"/accounts/members/{Membership.objects.get(user=owner).pk}/", {"role": "viewer"}
    )
    assert response.status_code == 403
    assert Membership.objects.get(user=owner).role == "owner"


def test_last_owner_leaving_gets_a_message(owner) -> None:
    response = _client(owner).post(f"/accounts/teams/{owner.current_team_id}/leave/")
    assert response.status_code == 409
    assert "last owner" in response.content.decode()


def test_switch_team(owner) -> None:
    second = TeamFactory(name="Second team")
    Membership.objects.create(team=second, user=owner, role="viewer")
    client = _client(owner)
    response = client.post("/accounts/teams/switch/", {"team": second.pk, "next": "/jobs/"})
    assert response["Location"] == "/jobs/"
    owner.refresh_from_db()
    assert owner.current_team_id == second.pk
    htmx = client.post(
        "/accounts/teams/switch/",
        {"team": second.pk, "next": "/datasets/5/"},
        HTTP_HX_REQUEST="true",
    )
    assert htmx["HX-Redirect"] == "/"  # an object page of the old team would 404
    assert client.post("/accounts/teams/switch/", {"team": TeamFactory().pk}).status_code == 404


def test_create_team_page(owner) -> None:
    client = _client(owner)
    response = client.post("/accounts/teams/new/", {"name": "Lab"})
    team = Membership.objects.get(user=owner, team__name="Lab").team
    assert response["Location"] == f"/accounts/teams/{team.pk}/"


def test_api_tokens_page_shows_secret_once_and_revokes(owner) -> None:
    client = _client(owner)
    page = client.post(
        "/accounts/tokens/", {"name": "CI", "team": str(owner.current_team_id)}
    ).content.decode()
    token = ApiToken.objects.get(user=owner)
    secret = re.search(r'data-testid="new-token">(mlm_[^<]+)<', page).group(1)
    assert token.team_id == owner.current_team_id
    assert secret not in client.get("/accounts/tokens/").content.decode()
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert not token.is_active
    other = ApiToken.objects.create(
        user=UserFactory(), name="x", prefix="mlm_x", token_hash="h" * 64
    )
    assert client.post(f"/accounts/tokens/{other.pk}/revoke/").status_code == 404
