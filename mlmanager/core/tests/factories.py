"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

import factory
from django.utils import timezone
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Invitation, Membership, Team, User
from mlmanager.accounts.services import api_token_create

PASSWORD = "correct horse battery staple 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    team = factory.SubFactory(TeamFactory)
    token = factory.Sequence(lambda n: f"invitation-token-{n}")
    role = Membership.Role.EDITOR
    max_uses = 1
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))


def member(role: str = Membership.Role.OWNER, team: Team | None = None) -> User:
    """A user who belongs to `team` (a new one if not given) with `role`, working in it."""
    team = team or TeamFactory()
    user = UserFactory()
    MembershipFactory(team=team, user=user, role=role)
    user.current_team = team
    user.save(update_fields=["current_team"])
    return user


def api_client_for(user: User, team: Team | None = None) -> APIClient:
    """An API client with a fresh bearer token of `user` (limited to `team` when given)."""
    _token, raw = api_token_create(caller=Caller.for_session(user), name="tests", team=team)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
