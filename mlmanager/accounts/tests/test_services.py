from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from mlmanager.accounts import services
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Invitation, Membership
from mlmanager.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from mlmanager.core.tests.factories import TeamFactory, UserFactory, member

pytestmark = pytest.mark.django_db


def test_single_use_invitation_admits_one_person(owner) -> None:
    invitation = services.invitation_create(
        caller=Caller.for_session(owner), team_id=owner.current_team_id, role="viewer"
    )
    first, second = UserFactory(), UserFactory()
    membership = services.invitation_accept(
        caller=Caller.for_session(first), token=invitation.token
    )
    assert (membership.team_id, membership.role) == (owner.current_team_id, "viewer")
    first.refresh_from_db()
    assert first.current_team_id == owner.current_team_id
    with pytest.raises(ApplicationError) as error:
        services.invitation_accept(caller=Caller.for_session(second), token=invitation.token)
    assert error.value.status_code == 410
    assert not Membership.objects.filter(user=second).exists()


def test_existing_member_does_not_use_up_invitation(owner) -> None:
    invitation = services.invitation_create(
        caller=Caller.for_session(owner), team_id=owner.current_team_id
    )
    services.invitation_accept(caller=Caller.for_session(owner), token=invitation.token)
    invitation.refresh_from_db()
    assert invitation.use_count == 0


def test_multi_use_invitation(owner) -> None:
    invitation = services.invitation_create(
        caller=Caller.for_session(owner), team_id=owner.current_team_id, max_uses=None
    )
    for _ in range(3):
        services.invitation_accept(caller=Caller.for_session(UserFactory()), token=invitation.token)
    invitation.refresh_from_db()
    assert invitation.use_count == 3
    assert invitation.is_usable


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_unusable_invitation_is_refused(owner, state: str) -> None:
    invitation = services.invitation_create(
        caller=Caller.for_session(owner), team_id=owner.current_team_id
    )
    if state == "revoked":
        services.invitation_revoke(caller=Caller.for_session(owner), invitation=invitation)
    else:
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    with pytest.raises(ApplicationError, match="expired, been revoked or already been used"):
        services.invitation_accept(caller=Caller.for_session(UserFactory()), token=invitation.token)


def test_unknown_invitation_token_is_not_found() -> None:
    with pytest.raises(NotFound):
        services.invitation_accept(caller=Caller.for_session(UserFactory()), token="nope")


def test_invitation_by_email_sends_link(owner, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_create(
            caller=Caller.for_session(owner), team_id=owner.current_team_id, email="New@Example.com"
        )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert f"/accounts/invite/{invitation.token}/" in mail.outbox[0].body


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_admins_and_owners_invite(role: str) -> None:
    user = member(role)
    with pytest.raises(PermissionDenied):
        services.invitation_create(caller=Caller.for_session(user), team_id=user.current_team_id)


def test_invitation_to_other_team_is_not_found(owner) -> None:
    with pytest.raises(NotFound):
        services.invitation_create(caller=Caller.for_session(owner), team_id=TeamFactory().pk)


def test_invitation_cannot_grant_ownership(owner) -> None:
    with pytest.raises(ApplicationError):
        services.invitation_create(
            caller=Caller.for_session(owner), team_id=owner.current_team_id, role="owner"
        )


def test_last_owner_cannot_be_demoted_or_leave(owner) -> None:
    membership = Membership.objects.get(user=owner)
    with pytest.raises(Conflict):
        services.membership_change_role(
            caller=Caller.for_session(owner), membership=membership, role="admin"
        )
    with pytest.raises(Conflict):
        services.team_leave(caller=Caller.for_session(owner), team_id=owner.current_team_id)


def test_admin_cannot_grant_ownership(owner) -> None:
    admin = member("admin", team=owner.current_team)
    viewer = member("viewer", team=owner.current_team)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(
            caller=Caller.for_session(admin),
            membership=Membership.objects.get(user=viewer),
            role="owner",
        )
    changed = services.membership_change_role(
        caller=Caller.for_session(admin),
        membership=Membership.objects.get(user=viewer),
        role="editor",
    )
    assert changed.role == "editor"


def test_member_leaves_and_loses_access(owner) -> None:
    editor = member("editor", team=owner.current_team)
    services.team_leave(caller=Caller.for_session(editor), team_id=owner.current_team_id)
    assert not Membership.objects.filter(user=editor).exists()
    editor.refresh_from_db()
    assert editor.current_team_id is None


def test_switch_team_only_to_own_teams(owner) -> None:
    other = TeamFactory()
    with pytest.raises(NotFound):
        services.team_switch(caller=Caller.for_session(owner), team_id=other.pk)
    second = services.team_create(caller=Caller.for_session(owner), name="Second")
    first_id = Membership.objects.filter(user=owner).exclude(team=second).get().team_id
    services.team_switch(caller=Caller.for_session(owner), team_id=first_id)
    owner.refresh_from_db()
    assert owner.current_team_id == first_id


def test_profile_preferences_are_validated(owner) -> None:
    services.user_update_profile(user=owner, time_zone="Europe/Paris", decimal_separator=",")
    owner.refresh_from_db()
    assert (owner.time_zone, owner.decimal_separator) == ("Europe/Paris", ",")
    with pytest.raises(ApplicationError):
        services.user_update_profile(user=owner, time_zone="Mars/Olympus")
