"""Consulting reads: who is a consultant, which requests a caller sees, and the one
permission-checked fetch of a request.

Two sides see a request: its team (by role, as every team object) and the consultants — an
open request is in every consultant's queue, a taken one is its consultant's only. A
credential limited to one team (a team token) acts for that team, never as a consultant.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from mlmanager.accounts.access import access_team_object, team_role
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, User
from mlmanager.consulting.models import Consultant, ConsultingRequest
from mlmanager.core.access import ROLE_ACTIONS, Action, parse_id
from mlmanager.core.errors import NotFound
from mlmanager.machines.models import Machine

TEAM_SIDE = "team"
CONSULTANT_SIDE = "consultant"
# Who hears of a step on the team's side: people who may act on the request (editor and up).
TEAM_ACTING_ROLES = (
    Membership.Role.EDITOR,
    Membership.Role.ADMIN,
    Membership.Role.OWNER,
)


def _with_relations(queryset: QuerySet[ConsultingRequest]) -> QuerySet[ConsultingRequest]:
    return queryset.select_related("team", "created_by", "consultant", "model", "cancelled_by")


def is_consultant(*, caller: Caller) -> bool:
    """An active staff user with an active Consultant row, on a credential not limited to one
    team."""
    user = caller.user
    if user is None or caller.team_limit is not None:
        return False
    if not (user.is_active and user.is_staff):
        return False
    return Consultant.objects.filter(user_id=user.pk, is_active=True).exists()


def consultants_to_notify() -> list[User]:
    """Every active consultant with an e-mail address: a new request is in all their queues."""
    return list(
        User.objects.filter(
            consultant__is_active=True, is_active=True, is_staff=True, email__gt=""
        ).order_by("pk")
    )


def team_recipients(*, consulting_request: ConsultingRequest) -> list[User]:
    """Who hears of a step on the team's side: the request's author while they may still act
    on it (editor and up in the team), else every member who may."""
    acting = User.objects.filter(
        is_active=True,
        email__gt="",
        memberships__team_id=consulting_request.team_id,
        memberships__role__in=TEAM_ACTING_ROLES,
    ).order_by("pk")
    author_id = consulting_request.created_by_id
    author = acting.filter(pk=author_id).first() if author_id is not None else None
    return [author] if author is not None else list(acting)


def requests_for_team(*, caller: Caller, team: Any) -> QuerySet[ConsultingRequest]:
    """The team's requests (the team's list page: `team` is one the caller is a member of)."""
    return _with_relations(
        ConsultingRequest.objects.for_caller(caller)
        .filter(team=team)
        .order_by("-created_at", "-id")
    )


def requests_for_caller(*, caller: Caller) -> QuerySet[ConsultingRequest]:
    """Everything the caller sees: their teams' requests and, for a consultant, the open
    ones and their own. One query (the teams by a subquery, so no row comes twice)."""
    if caller.user_id is None:
        return ConsultingRequest.objects.none()
    team_ids = Membership.objects.filter(user_id=caller.user_id).values("team_id")
    if caller.team_limit is not None:
        team_ids = team_ids.filter(team_id=caller.team_limit)
    visible = Q(team_id__in=team_ids)
    if is_consultant(caller=caller):
        visible |= Q(state=ConsultingRequest.State.OPEN) | Q(consultant_id=caller.user_id)
    return _with_relations(ConsultingRequest.objects.filter(visible)).order_by("-created_at", "-id")


def consultant_queue(*, caller: Caller) -> QuerySet[ConsultingRequest]:
    """A consultant's queue: open requests (oldest first: first come, first served) and the
    ones they took that are not closed."""
    if not is_consultant(caller=caller):
        return ConsultingRequest.objects.none()
    closed = [ConsultingRequest.State.FINISHED, ConsultingRequest.State.CANCELLED]
    return _with_relations(
        ConsultingRequest.objects.filter(
            Q(state=ConsultingRequest.State.OPEN)
            | (Q(consultant_id=caller.user_id) & ~Q(state__in=closed))
        )
    ).order_by("created_at", "id")


def access_consulting_request(
    *, caller: Caller, id: Any, action: Action = Action.VIEW
) -> ConsultingRequest:
    """A request the caller may see, with `caller_side` set ("team" or "consultant").

    Its team's members reach it by role (`action`, as every team object); a consultant reaches
    an open request and the ones they took. Anyone else: not found, so ids reveal nothing."""
    queryset = _with_relations(ConsultingRequest.objects.all())
    try:
        found = access_team_object(queryset, caller=caller, id=id, action=action)
    except NotFound:
        if not is_consultant(caller=caller):
            raise
        found_or_none = queryset.filter(
            Q(state=ConsultingRequest.State.OPEN) | Q(consultant_id=caller.user_id),
            pk=parse_id(id),
        ).first()
        if found_or_none is None:
            raise NotFound() from None
        found_or_none.caller_side = CONSULTANT_SIDE  # type: ignore[attr-defined]
        return found_or_none
    found.caller_side = TEAM_SIDE  # type: ignore[attr-defined]
    return found


def caller_team_role(*, caller: Caller, consulting_request: ConsultingRequest) -> str | None:
    return team_role(caller=caller, team_id=consulting_request.team_id)


def team_model(*, team_id: int, id: Any) -> Machine:
    """The team's own model named by a request (another team's id: not found)."""
    machine = Machine.objects.filter(team_id=team_id, pk=parse_id(id)).first()
    if machine is None:
        raise NotFound(code="model_not_found", details={"field": "model"})
    return machine


def team_models(*, team_id: int) -> QuerySet[Machine]:
    """The team's models, for the new-request form's choice."""
    return Machine.objects.filter(team_id=team_id).order_by("name", "id")


def access_consulting_attachment(*, caller: Caller, id: Any) -> ConsultingRequest:
    """A request whose attachment the caller may download: its team's members and its
    consultant (a consultant browsing the open queue sees the description, not the file)."""
    consulting_request = access_consulting_request(caller=caller, id=id)
    if (
        consulting_request.caller_side == CONSULTANT_SIDE  # type: ignore[attr-defined]
        and consulting_request.consultant_id != caller.user_id
    ):
        raise NotFound()
    if not consulting_request.attachment_name:
        raise NotFound(_("This request has no attachment."), code="no_attachment")
    return consulting_request


def available_actions(*, caller: Caller, consulting_request: ConsultingRequest) -> set[str]:
    """The steps the caller may take on the request now (the detail page's buttons; the
    services check again when one is taken)."""
    state = consulting_request.state
    State = ConsultingRequest.State
    consultant = is_consultant(caller=caller)
    own = consultant and consulting_request.consultant_id == caller.user_id
    role = team_role(caller=caller, team_id=consulting_request.team_id)
    team_editor = role is not None and Action.CHANGE in ROLE_ACTIONS[role]
    actions: set[str] = set()
    if consultant and state == State.OPEN:
        actions.add("approve")
    if own and state == State.APPROVED:
        actions.add("contract")
    if team_editor and state == State.CONTRACT:
        actions.add("accept")
    if own and state == State.ACCEPTED:
        actions.add("finish")
    if (own or team_editor) and not consulting_request.is_closed:
        actions.add("cancel")
    return actions


def timeline(consulting_request: ConsultingRequest) -> list[tuple[str, Any]]:
    """The steps the request went through, in order: (what, when)."""
    steps = [
        (_("Submitted"), consulting_request.created_at),
        (_("Approved by a consultant"), consulting_request.approved_at),
        (_("Contract proposed"), consulting_request.contract_at),
        (_("Contract accepted"), consulting_request.accepted_at),
        (_("Finished"), consulting_request.finished_at),
        (_("Cancelled"), consulting_request.cancelled_at),
    ]
    return [(what, when) for what, when in steps if when is not None]
