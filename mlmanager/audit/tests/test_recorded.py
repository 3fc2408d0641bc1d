"""Every audited change records exactly one event when made through its page or API: who (the
actor, their credential and its id, their address), in which team, to what, and what changed.
A change that fails or is refused records nothing, and a token's secret is never recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import ApiToken, Invitation, Membership, Team
from mlmanager.accounts.services import api_token_create
from mlmanager.audit.models import AuditAction, AuditEvent
from mlmanager.core.tests.factories import PASSWORD, InvitationFactory, UserFactory, member
from mlmanager.datasets.models import Dataset, dataset_storage_dir
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.machines.tests.conftest import make_version

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.4"  # every client here connects from it (REMOTE_ADDR, no proxy)


@contextmanager
def recorded() -> Iterator[list[AuditEvent]]:
    """The events written inside the block (the setup's own, such as a token made for the
    client, are not)."""
    start = AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    events: list[AuditEvent] = []
    yield events
    events.extend(AuditEvent.objects.filter(pk__gt=start).order_by("pk"))


def _page(user: Any) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    return client


def _api(user: Any, team: Team | None = None) -> tuple[APIClient, ApiToken]:
    """An API client with a new token of `user` (limited to `team` when given), and the token."""
    token, raw = api_token_create(caller=Caller.for_session(user), name="tests", team=team)
    client = APIClient(REMOTE_ADDR=ADDRESS)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token


def _by_session(event: AuditEvent, user: Any) -> None:
    assert (event.actor, event.actor_email) == (user, user.email)
    assert (event.credential, event.credential_id, event.address) == ("session", None, ADDRESS)


def _target(event: AuditEvent) -> tuple[str, int | None, str]:
    return event.target_type, event.target_id, event.target_repr


def _dataset(user: Any) -> Dataset:
    return Dataset.objects.create(
        team=user.current_team,
        created_by=user,
        name="Customers",
        original_filename="customers.csv",
        storage_dir=dataset_storage_dir(user.current_team_id),
        source_name="source.csv",
        status=Dataset.Status.READY,
    )


def _machine(user: Any) -> Machine:
    return Machine.objects.create(
        team=user.current_team,
        created_by=user,
        name="Churn",
        inputs=["tenure"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(user.current_team_id),
    )


# --- teams -----------------------------------------------------------------------------------


def test_team_created_on_the_page(owner) -> None:
    with recorded() as events:
        response = _page(owner).post(reverse("accounts:team_create"), {"name": "Research"})
    assert response.status_code == 302
    team = Team.objects.get(name="Research")
    [event] = events
    assert (event.action, event.team) == (AuditAction.TEAM_CREATED, team)
    _by_session(event, owner)
    assert _target(event) == ("team", team.pk, "Research")


def test_team_created_through_the_api_with_a_personal_token(owner) -> None:
    client, token = _api(owner)
    with recorded() as events:
        response = client.post("/api/v1/teams/", {"name": "Research"}, format="json")
    assert response.status_code == 201, response.content
    [event] = events
    assert (event.action, event.team_id) == (AuditAction.TEAM_CREATED, response.json()["id"])
    assert (event.actor, event.credential, event.credential_id) == (
        owner,
        "personal_token",
        token.pk,
    )
    assert event.address == ADDRESS


def test_a_team_token_cannot_create_a_team_and_records_nothing(owner) -> None:
    client, _token = _api(owner, team=owner.current_team)
    with recorded() as events:
        response = client.post("/api/v1/teams/", {"name": "Research"}, format="json")
    assert response.status_code == 403
    assert events == []


def test_team_renamed(owner) -> None:
    team = owner.current_team
    before = team.name
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:team", args=[team.pk]), {"rename": "1", "name": "Research"}
        )
    assert response.status_code == 302
    [event] = events
    assert (event.action, event.team) == (AuditAction.TEAM_RENAMED, team)
    _by_session(event, owner)
    assert _target(event) == ("team", team.pk, "Research")
    assert event.changes == {"name": {"before": before, "after": "Research"}}


def test_a_viewer_cannot_rename_and_nothing_is_recorded(owner) -> None:
    viewer = member("viewer", team=owner.current_team)
    with recorded() as events:
        _page(viewer).post(
            reverse("accounts:team", args=[owner.current_team_id]),
            {"rename": "1", "name": "Research"},
        )
    assert events == []
    assert Team.objects.get(pk=owner.current_team_id).name != "Research"


# --- memberships -----------------------------------------------------------------------------


def test_role_changed(owner) -> None:
    viewer = member("viewer", team=owner.current_team)
    membership = Membership.objects.get(user=viewer)
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:membership_update", args=[membership.pk]), {"role": "editor"}
        )
    assert response.status_code == 302
    [event] = events
    assert (event.action, event.team) == (AuditAction.MEMBERSHIP_ROLE_CHANGED, owner.current_team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("membership", membership.pk)
    assert event.changes == {"role": {"before": "viewer", "after": "editor"}}
    assert event.details == {"user": viewer.email}


def test_demoting_the_last_owner_records_nothing(owner) -> None:
    membership = Membership.objects.get(user=owner)
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:membership_update", args=[membership.pk]), {"role": "admin"}
        )
    assert response.status_code == 409
    assert events == []


def test_an_editor_cannot_change_roles_and_nothing_is_recorded(owner) -> None:
    editor = member("editor", team=owner.current_team)
    membership = Membership.objects.get(user=owner)
    with recorded() as events:
        response = _page(editor).post(
            reverse("accounts:membership_update", args=[membership.pk]), {"role": "viewer"}
        )
    assert response.status_code == 403
    assert events == []


def test_member_removed_with_the_id_it_had(owner) -> None:
    editor = member("editor", team=owner.current_team)
    membership = Membership.objects.get(user=editor)
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:membership_update", args=[membership.pk]), {"remove": "1"}
        )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    [event] = events
    assert (event.action, event.team) == (AuditAction.MEMBERSHIP_REMOVED, owner.current_team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("membership", membership.pk)
    assert event.details == {"user": editor.email, "role": "editor"}


def test_leaving_is_a_removal_by_the_member(owner) -> None:
    editor = member("editor", team=owner.current_team)
    membership = Membership.objects.get(user=editor)
    with recorded() as events:
        response = _page(editor).post(reverse("accounts:team_leave", args=[owner.current_team_id]))
    assert response.status_code == 302
    [event] = events
    assert (event.action, event.team) == (AuditAction.MEMBERSHIP_REMOVED, owner.current_team)
    _by_session(event, editor)
    assert event.target_id == membership.pk
    assert event.details == {"user": editor.email, "role": "editor"}


def test_the_last_owner_cannot_leave_and_nothing_is_recorded(owner) -> None:
    with recorded() as events:
        response = _page(owner).post(reverse("accounts:team_leave", args=[owner.current_team_id]))
    assert response.status_code == 409
    assert events == []


# --- invitations -----------------------------------------------------------------------------


def test_invitation_created_without_its_token(owner) -> None:
    team = owner.current_team
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:team", args=[team.pk]),
            {"role": "viewer", "max_uses": "3", "valid_days": "5", "email": "New@Example.com"},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get(team=team)
    [event] = events
    assert (event.action, event.team) == (AuditAction.INVITATION_CREATED, team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("invitation", invitation.pk)
    assert event.details == {
        "role": "viewer",
        "email": "new@example.com",
        "max_uses": 3,
        "expires_at": DjangoJSONEncoder().default(invitation.expires_at),
    }
    assert invitation.token not in json.dumps([event.changes, event.details, event.target_repr])


def test_invitation_revoked_once(owner) -> None:
    invitation = InvitationFactory(team=owner.current_team, created_by=owner)
    url = reverse("accounts:invitation_revoke", args=[invitation.pk])
    client = _page(owner)
    with recorded() as events:
        assert client.post(url).status_code == 302
        assert client.post(url).status_code == 302  # already revoked: nothing changes
    [event] = events
    assert (event.action, event.team) == (AuditAction.INVITATION_REVOKED, owner.current_team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("invitation", invitation.pk)


def test_another_teams_invitation_cannot_be_revoked(owner) -> None:
    invitation = InvitationFactory()
    with recorded() as events:
        response = _page(owner).post(reverse("accounts:invitation_revoke", args=[invitation.pk]))
    assert response.status_code == 404
    assert events == []


def test_invitation_accepted_by_the_newcomer_only_once(owner) -> None:
    invitation = InvitationFactory(team=owner.current_team, role="viewer", max_uses=None)
    newcomer = UserFactory()
    url = reverse("accounts:invitation_accept", args=[invitation.token])
    client = _page(newcomer)
    with recorded() as events:
        assert client.post(url).status_code == 302
        assert client.post(url).status_code == 302  # already a member: nothing changes
    [event] = events
    assert (event.action, event.team) == (AuditAction.INVITATION_ACCEPTED, owner.current_team)
    _by_session(event, newcomer)
    assert (event.target_type, event.target_id) == ("invitation", invitation.pk)
    assert event.details == {"user": newcomer.email, "role": "viewer"}


# --- API tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("limited", [False, True], ids=["personal", "team"])
def test_token_created_on_the_page_without_its_secret(owner, limited: bool) -> None:
    team = owner.current_team if limited else None
    with recorded() as events:
        response = _page(owner).post(
            reverse("accounts:api_tokens"),
            {"name": "CI", "team": team.pk if team else "", "expires_at": ""},
        )
    assert response.status_code == 200
    raw = response.context["created_raw"]
    token = ApiToken.objects.get(user=owner, name="CI")
    [event] = events
    assert (event.action, event.team) == (AuditAction.TOKEN_CREATED, team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("apitoken", token.pk)
    assert event.details == {"name": "CI", "expires_at": None}
    assert raw not in json.dumps([event.changes, event.details, event.target_repr])


def test_token_created_with_a_password_through_the_api(owner) -> None:
    with recorded() as events:
        response = APIClient(REMOTE_ADDR=ADDRESS).post(
            "/api/v1/auth/token/",
            {"email": owner.email, "password": PASSWORD, "name": "laptop"},
            format="json",
        )
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    [event] = events
    assert (event.action, event.team) == (AuditAction.TOKEN_CREATED, None)
    _by_session(event, owner)
    assert event.details == {"name": "laptop", "expires_at": None}
    assert raw not in json.dumps([event.changes, event.details, event.target_repr])


def test_a_wrong_password_creates_and_records_nothing(owner) -> None:
    with recorded() as events:
        response = APIClient(REMOTE_ADDR=ADDRESS).post(
            "/api/v1/auth/token/", {"email": owner.email, "password": "wrong"}, format="json"
        )
    assert response.status_code == 401
    assert events == []


def test_token_revoked_once(owner) -> None:
    token, _raw = api_token_create(
        caller=Caller.for_session(owner), name="CI", team=owner.current_team
    )
    url = reverse("accounts:api_token_revoke", args=[token.pk])
    client = _page(owner)
    with recorded() as events:
        assert client.post(url).status_code == 302
        assert client.post(url).status_code == 302  # already revoked: nothing changes
    [event] = events
    assert (event.action, event.team) == (AuditAction.TOKEN_REVOKED, owner.current_team)
    _by_session(event, owner)
    assert (event.target_type, event.target_id) == ("apitoken", token.pk)


def test_someone_elses_token_cannot_be_revoked(owner) -> None:
    colleague = member("owner", team=owner.current_team)
    token, _raw = api_token_create(caller=Caller.for_session(colleague), name="theirs")
    with recorded() as events:
        response = _page(owner).post(reverse("accounts:api_token_revoke", args=[token.pk]))
    assert response.status_code == 404
    assert events == []
    token.refresh_from_db()
    assert token.revoked_at is None


# --- deletions -------------------------------------------------------------------------------


def test_dataset_deleted_with_a_team_token(owner) -> None:
    dataset = _dataset(owner)
    client, token = _api(owner, team=owner.current_team)
    with recorded() as events:
        response = client.delete(f"/api/v1/datasets/{dataset.pk}/")
    assert response.status_code == 204
    [event] = events
    assert (event.action, event.team) == (AuditAction.DATASET_DELETED, owner.current_team)
    assert (event.actor, event.credential, event.credential_id, event.address) == (
        owner,
        "team_token",
        token.pk,
        ADDRESS,
    )
    assert _target(event) == ("dataset", dataset.pk, "Customers")


def test_a_viewer_cannot_delete_a_dataset_and_nothing_is_recorded(owner) -> None:
    dataset = _dataset(owner)
    client, _token = _api(member("viewer", team=owner.current_team))
    with recorded() as events:
        response = client.delete(f"/api/v1/datasets/{dataset.pk}/")
    assert response.status_code == 403
    assert events == []


def test_model_deleted_on_the_page(owner) -> None:
    machine = _machine(owner)
    with recorded() as events:
        response = _page(owner).post(reverse("machines:delete", args=[machine.pk]))
    assert response.status_code == 302
    [event] = events
    assert (event.action, event.team) == (AuditAction.MODEL_DELETED, owner.current_team)
    _by_session(event, owner)
    assert _target(event) == ("machine", machine.pk, "Churn")


def test_model_deleted_with_a_personal_token(owner) -> None:
    machine = _machine(owner)
    client, token = _api(owner)
    with recorded() as events:
        response = client.delete(f"/api/v1/models/{machine.pk}/")
    assert response.status_code == 204
    [event] = events
    assert (event.action, event.credential, event.credential_id) == (
        AuditAction.MODEL_DELETED,
        "personal_token",
        token.pk,
    )
    assert (event.team, event.target_id) == (owner.current_team, machine.pk)


# --- model versions --------------------------------------------------------------------------


def test_version_activated_with_the_previous_one(owner) -> None:
    machine = _machine(owner)
    make_version(machine, number=1)
    second = make_version(machine, number=2, activate=False)
    client, token = _api(owner, team=owner.current_team)
    url = f"/api/v1/models/{machine.pk}/versions/2/activate/"
    with recorded() as events:
        assert client.post(url).status_code == 200
        assert client.post(url).status_code == 200  # already active: nothing changes
    [event] = events
    assert (event.action, event.team) == (AuditAction.MODEL_VERSION_ACTIVATED, owner.current_team)
    assert (event.actor, event.credential, event.credential_id) == (owner, "team_token", token.pk)
    assert (event.target_type, event.target_id) == ("modelversion", second.pk)
    assert event.changes == {"active_version": {"before": 1, "after": 2}}
    assert event.details == {"model": "Churn"}


def test_rollback_on_the_page(owner) -> None:
    machine = _machine(owner)
    first = make_version(machine, number=1)
    make_version(machine, number=2)
    with recorded() as events:
        response = _page(owner).post(
            reverse("machines:version_activate", args=[machine.pk, first.number])
        )
    assert response.status_code == 302
    [event] = events
    _by_session(event, owner)
    assert event.changes == {"active_version": {"before": 2, "after": 1}}


def test_threshold_changed_and_cleared(owner) -> None:
    machine = _machine(owner)
    version = make_version(machine)
    client, _token = _api(owner)
    url = f"/api/v1/models/{machine.pk}/versions/1/"
    with recorded() as events:
        assert client.patch(url, {"threshold": 0.3}, format="json").status_code == 200
        assert client.patch(url, {"threshold": None}, format="json").status_code == 200
    set_event, cleared = events
    assert (set_event.action, set_event.team) == (
        AuditAction.MODEL_VERSION_THRESHOLD_CHANGED,
        owner.current_team,
    )
    assert (set_event.target_type, set_event.target_id) == ("modelversion", version.pk)
    assert set_event.changes == {"threshold": {"before": None, "after": 0.3}}
    assert cleared.changes == {"threshold": {"before": 0.3, "after": None}}


def test_a_refused_threshold_records_nothing(owner) -> None:
    machine = _machine(owner)
    make_version(machine)
    client, _token = _api(owner)
    with recorded() as events:
        response = client.patch(
            f"/api/v1/models/{machine.pk}/versions/1/", {"threshold": 1.5}, format="json"
        )
    assert response.status_code == 400
    assert events == []
