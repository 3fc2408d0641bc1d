"""Reads about users, teams and memberships, always from the caller's point of view."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.http import urlsafe_base64_decode

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import ApiToken, Invitation, Membership, Team, User
from mlmanager.accounts.tokens import account_activation_token
from mlmanager.core.access import Action, parse_id
from mlmanager.core.errors import NotFound


def teams_for_caller(*, caller: Caller) -> QuerySet[Team]:
    """The teams the caller is a member of (only the one its credential is limited to)."""
    if caller.user_id is None:
        return Team.objects.none()
    teams = Team.objects.filter(memberships__user_id=caller.user_id)
    if caller.team_limit is not None:
        teams = teams.filter(pk=caller.team_limit)
    return teams.order_by("name", "pk")


def teams_with_role_for_caller(*, caller: Caller) -> QuerySet[Team]:
    """The caller's teams, each annotated with `role`: the caller's role in it."""
    if caller.user_id is None:
        return Team.objects.none()
    role = Membership.objects.filter(team=OuterRef("pk"), user_id=caller.user_id).values("role")
    return teams_for_caller(caller=caller).annotate(role=Subquery(role[:1]))


def access_team(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Team:
    team = teams_for_caller(caller=caller).filter(pk=parse_id(id)).first()
    if team is None:
        raise NotFound()
    require_team_action(caller=caller, team_id=team.pk, action=action)
    return team


def current_team_for(*, caller: Caller) -> Team | None:
    """The team the caller works in now: their chosen one if they are still a member (and the
    credential reaches it), else their first team. Pages and API calls without an explicit team
    use it."""
    teams = teams_for_caller(caller=caller)
    chosen = caller.user.current_team_id if caller.user is not None else None
    if chosen is not None:
        team = teams.filter(pk=chosen).first()
        if team is not None:
            return team
    return teams.first()


def team_named_or_current(*, caller: Caller, team_id: Any = None) -> Team:
    """The team an API call works in: the one it names (which the caller must reach),
    else the caller's current team; "not found" when there is none."""
    team = access_team(caller=caller, id=team_id) if team_id else current_team_for(caller=caller)
    if team is None:
        raise NotFound()
    return team


def team_members(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__email")


def access_membership(*, caller: Caller, id: Any, action: Action = Action.MANAGE) -> Membership:
    membership = (
        Membership.objects.filter(pk=parse_id(id), team__in=teams_for_caller(caller=caller))
        .select_related("team", "user")
        .first()
    )
    if membership is None:
        raise NotFound()
    require_team_action(caller=caller, team_id=membership.team_id, action=action)
    return membership


def team_invitations(*, team: Team) -> QuerySet[Invitation]:
    return team.invitations.select_related("created_by").order_by("-created_at")


def access_invitation(*, caller: Caller, id: Any) -> Invitation:
    invitation = (
        Invitation.objects.filter(pk=parse_id(id), team__in=teams_for_caller(caller=caller))
        .select_related("team")
        .first()
    )
    if invitation is None:
        raise NotFound()
    require_team_action(caller=caller, team_id=invitation.team_id, action=Action.MANAGE)
    return invitation


def invitation_by_token(*, token: str) -> Invitation:
    invitation = Invitation.objects.select_related("team").filter(token=token).first()
    if invitation is None:
        raise NotFound()
    return invitation


def user_is_active(*, user_id: int) -> bool:
    """Whether the account still exists and is not deactivated, read now (a socket's user was
    loaded when it opened)."""
    return User.objects.filter(pk=user_id, is_active=True).exists()


def user_api_tokens(*, user: User) -> QuerySet[ApiToken]:
    return user.api_tokens.select_related("team").order_by("-created_at")


def access_api_token(*, caller: Caller, id: Any) -> ApiToken:
    """One of the caller's own tokens (nobody else's: a token is its user's, whatever its team)."""
    if caller.user_id is None:
        raise NotFound()
    token = (
        ApiToken.objects.filter(pk=parse_id(id), user_id=caller.user_id)
        .select_related("team")
        .first()
    )
    if token is None:
        raise NotFound()
    return token


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
