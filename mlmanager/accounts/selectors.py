"""Reads about users, teams and memberships, always from the caller's point of view."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.http import urlsafe_base64_decode

from mlmanager.accounts.models import ApiToken, Invitation, Membership, Team, User
from mlmanager.accounts.tokens import account_activation_token
from mlmanager.core.access import Action, parse_id, require_team_action
from mlmanager.core.errors import NotFound


def teams_for_user(*, user: User) -> QuerySet[Team]:
    teams = Team.objects.filter(memberships__user=user)
    restricted = getattr(user, "restricted_team_id", None)
    if restricted is not None:
        teams = teams.filter(pk=restricted)
    return teams.order_by("name", "pk")


def teams_with_role_for_user(*, user: User) -> QuerySet[Team]:
    """The user's teams, each annotated with `role`: the user's role in it."""
    role = Membership.objects.filter(team=OuterRef("pk"), user=user).values("role")[:1]
    return teams_for_user(user=user).annotate(role=Subquery(role))


def access_team(*, user: User, id: Any, action: Action = Action.VIEW) -> Team:
    team = teams_for_user(user=user).filter(pk=parse_id(id)).first()
    if team is None:
        raise NotFound()
    require_team_action(user=user, team_id=team.pk, action=action)
    return team


def current_team_for(*, user: User) -> Team | None:
    """The team the user works in now: their chosen one if they are still a member, else their
    first team. Pages and API calls without an explicit team use it."""
    teams = teams_for_user(user=user)
    if user.current_team_id is not None:
        team = teams.filter(pk=user.current_team_id).first()
        if team is not None:
            return team
    return teams.first()


def team_members(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__email")


def access_membership(*, user: User, id: Any, action: Action = Action.MANAGE) -> Membership:
    membership = (
        Membership.objects.filter(pk=parse_id(id), team__memberships__user=user)
        .select_related("team", "user")
        .first()
    )
    if membership is None:
        raise NotFound()
    require_team_action(user=user, team_id=membership.team_id, action=action)
    return membership


def team_invitations(*, team: Team) -> QuerySet[Invitation]:
    return team.invitations.select_related("created_by").order_by("-created_at")


def access_invitation(*, user: User, id: Any) -> Invitation:
    invitation = (
        Invitation.objects.filter(pk=parse_id(id), team__memberships__user=user)
        .select_related("team")
        .first()
    )
    if invitation is None:
        raise NotFound()
    require_team_action(user=user, team_id=invitation.team_id, action=Action.MANAGE)
    return invitation


def invitation_by_token(*, token: str) -> Invitation:
    invitation = Invitation.objects.select_related("team").filter(token=token).first()
    if invitation is None:
        raise NotFound()
    return invitation


def user_api_tokens(*, user: User) -> QuerySet[ApiToken]:
    return user.api_tokens.select_related("team").order_by("-created_at")


def user_by_activation_token(*, uidb64: str, token: str) -> User | None:
    """The inactive account an activation link was made for, or None for a link that is forged,
    expired, already used or outdated by a password change."""
    try:
        user_id = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if not 0 < user_id < 2**63:  # SQLite raises OverflowError on integers past 64 bits
        return None
    user = User.objects.filter(pk=user_id, is_active=False).first()
    if user is None or not account_activation_token.check_token(user, token):
        return None
    return user
