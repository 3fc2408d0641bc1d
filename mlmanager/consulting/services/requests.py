"""Consulting's state changes: submit, approve, contract, accept, finish, cancel.

Each step is one conditional UPDATE from the state it needs (`_move`): a request in any other
state is refused with 409 `wrong_state` and nothing changes, and two clicks at once move it
once. Money moves only through the ledger, in the step's transaction: the contract amount is
held when the team accepts (402 `insufficient_credits` leaves the request in `contract`), paid
out to the platform when the consultant finishes, released on cancel. With billing off the
ledger holds and pays nothing and every step still works. Each step e-mails the other side
after it commits (`emails`).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import access_team, current_team_for
from mlmanager.billing.models import Operation
from mlmanager.billing.services import ledger
from mlmanager.consulting import attachments, selectors
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.services import emails
from mlmanager.core.access import Action, require_role_action
from mlmanager.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied

logger = logging.getLogger(__name__)

State = ConsultingRequest.State

# The states each action starts from.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "approve": (State.OPEN,),
    "contract": (State.APPROVED,),
    "accept": (State.CONTRACT,),
    "finish": (State.ACCEPTED,),
    "cancel": (State.OPEN, State.APPROVED, State.CONTRACT, State.ACCEPTED),
}
MAX_DELAY_DAYS = 3650


class WrongState(Conflict):
    """The request's state does not allow this action now (e.g. accepting a finished one)."""

    default_code = "wrong_state"

    def __init__(self, *, action: str, state: str) -> None:
        super().__init__(
            _("This request is %(state)s: it cannot be %(action)s now.")
            % {"state": State(state).label, "action": _ACTION_PAST[action]},
            details={"state": state, "action": action, "allowed_states": ALLOWED_FROM[action]},
        )


_ACTION_PAST = {
    "approve": _("approved"),
    "contract": _("given a contract"),
    "accept": _("accepted"),
    "finish": _("finished"),
    "cancel": _("cancelled"),
}


def _not_consultant() -> PermissionDenied:
    return PermissionDenied(
        _("Only the platform's consultants may do that."), code="not_consultant"
    )


def _require_consultant(*, caller: Caller, consulting_request: ConsultingRequest) -> None:
    """An active consultant, and the request's own once it has one."""
    if not selectors.is_consultant(caller=caller):
        raise _not_consultant()
    if consulting_request.consultant_id not in (None, caller.user_id):
        raise PermissionDenied(_("Another consultant took this request."), code="not_your_request")


def _require_team_editor(*, caller: Caller, consulting_request: ConsultingRequest) -> None:
    role = selectors.caller_team_role(caller=caller, consulting_request=consulting_request)
    require_role_action(role, Action.CHANGE)


def _move(
    consulting_request: ConsultingRequest, *, action: str, to: str, **fields: Any
) -> ConsultingRequest:
    """Move the request to `to` if it is (still) in a state `action` starts from: one
    conditional UPDATE, so a concurrent step wins or loses whole. WrongState otherwise."""
    fields = {"state": to, "updated_at": timezone.now(), **fields}
    moved = ConsultingRequest.objects.filter(
        pk=consulting_request.pk, state__in=ALLOWED_FROM[action]
    ).update(**fields)
    if not moved:
        current = (
            ConsultingRequest.objects.filter(pk=consulting_request.pk)
            .values_list("state", flat=True)
            .first()
        )
        raise WrongState(action=action, state=current or consulting_request.state)
    for name, value in fields.items():
        setattr(consulting_request, name, value)
    return consulting_request


def _check_state(consulting_request: ConsultingRequest, action: str) -> None:
    """Refuse early (before a permission check that depends on the step's actor) when the
    request as read cannot take the action; `_move` is still the one that decides."""
    if consulting_request.state not in ALLOWED_FROM[action]:
        raise WrongState(action=action, state=consulting_request.state)


# --- submit -----------------------------------------------------------------------------------


def consulting_request_create(
    *,
    caller: Caller,
    category: str,
    description: str,
    team_id: Any = None,
    model_id: Any = None,
    attachment: Any = None,
) -> ConsultingRequest:
    """Submit a request for the caller's team (editor and up): it is open, in every
    consultant's queue. The model, if named, must be the team's (another team's: 404). The
    attachment is checked and stored before the row is written; when anything fails, neither
    the row nor the file is kept."""
    if team_id not in (None, ""):
        team = access_team(caller=caller, id=team_id, action=Action.CHANGE)
    else:
        current = current_team_for(caller=caller)
        if current is None:
            raise NotFound(_("You are not a member of any team."), code="no_team")
        team = access_team(caller=caller, id=current.pk, action=Action.CHANGE)
    model = (
        selectors.team_model(team_id=team.pk, id=model_id) if model_id not in (None, "") else None
    )
    consulting_request = ConsultingRequest(
        team=team,
        created_by=caller.user,
        category=category,
        description=description.strip(),
        model=model,
    )
    consulting_request.full_clean(exclude=["attachment_name", "attachment_filename"])
    checked = attachments.attachment_check(attachment) if attachment is not None else None
    stored = ""
    try:
        if checked is not None:
            stored = attachments.attachment_store(checked, team_id=team.pk)
            consulting_request.attachment_name = stored
            consulting_request.attachment_filename = checked.filename
            consulting_request.attachment_size = checked.size
        with transaction.atomic():
            consulting_request.save()
            emails.after_commit(consulting_request, step="submitted")
    except BaseException:
        attachments.attachment_delete(stored)
        raise
    logger.info("consulting request %s submitted by user %s", consulting_request.pk, caller.user_id)
    return consulting_request


# --- the consultant's steps ------------------------------------------------------------------


@transaction.atomic
def consulting_request_approve(
    *, caller: Caller, consulting_request: ConsultingRequest
) -> ConsultingRequest:
    """A consultant takes an open request: it is theirs from now on."""
    _require_consultant(caller=caller, consulting_request=consulting_request)
    now = timezone.now()
    _move(
        consulting_request,
        action="approve",
        to=State.APPROVED,
        consultant_id=caller.user_id,
        approved_at=now,
    )
    consulting_request.consultant = caller.user
    emails.after_commit(consulting_request, step="approved")
    return consulting_request


@transaction.atomic
def consulting_request_contract(
    *,
    caller: Caller,
    consulting_request: ConsultingRequest,
    amount: Decimal,
    budget_estimate: Decimal,
    delay_days: int,
) -> ConsultingRequest:
    """The request's consultant proposes the contract: what the team pays (`amount`, held at
    acceptance), the estimated budget and the delay in days."""
    _check_state(consulting_request, "contract")
    _require_consultant(caller=caller, consulting_request=consulting_request)
    if not 0 <= delay_days <= MAX_DELAY_DAYS:
        raise ApplicationError(
            _("The delay must be between 0 and %(max)s days.") % {"max": MAX_DELAY_DAYS},
            code="invalid_delay",
            details={"field": "delay_days"},
        )
    _move(
        consulting_request,
        action="contract",
        to=State.CONTRACT,
        amount=amount,
        budget_estimate=budget_estimate,
        delay_days=delay_days,
        contract_at=timezone.now(),
    )
    emails.after_commit(consulting_request, step="contract")
    return consulting_request


@transaction.atomic
def consulting_request_finish(
    *, caller: Caller, consulting_request: ConsultingRequest
) -> ConsultingRequest:
    """The consultant finished the work: the amount held at acceptance is paid out to the
    platform (with billing off nothing was held and nothing moves)."""
    _check_state(consulting_request, "finish")
    _require_consultant(caller=caller, consulting_request=consulting_request)
    _move(consulting_request, action="finish", to=State.FINISHED, finished_at=timezone.now())
    ledger.reservation_settle(
        key=consulting_request.reservation_key,
        used=consulting_request.amount or Decimal(0),
        created_by_id=caller.user_id,
        description=_("Consulting request #%(id)s") % {"id": consulting_request.pk},
        details={"consulting_request": consulting_request.pk},
    )
    emails.after_commit(consulting_request, step="finished")
    return consulting_request


# --- the team's steps -------------------------------------------------------------------------


@transaction.atomic
def consulting_request_accept(
    *, caller: Caller, consulting_request: ConsultingRequest
) -> ConsultingRequest:
    """The team (editor and up) accepts the contract: its amount is held from the team's
    balance. Not enough credit: 402 `insufficient_credits`, and the request stays in
    `contract` (the move and the hold commit together or not at all)."""
    _require_team_editor(caller=caller, consulting_request=consulting_request)
    _move(consulting_request, action="accept", to=State.ACCEPTED, accepted_at=timezone.now())
    ledger.reservation_hold(
        team_id=consulting_request.team_id,
        kind=Operation.Kind.CONSULTING,
        key=consulting_request.reservation_key,
        amount=consulting_request.amount or Decimal(0),
        description=_("Consulting request #%(id)s") % {"id": consulting_request.pk},
        details={"consulting_request": consulting_request.pk},
    )
    emails.after_commit(consulting_request, step="accepted")
    return consulting_request


# --- either side ------------------------------------------------------------------------------


@transaction.atomic
def consulting_request_cancel(
    *, caller: Caller, consulting_request: ConsultingRequest
) -> ConsultingRequest:
    """Either side cancels before the work is finished: the team (editor and up) or the
    request's consultant. A hold made at acceptance is released."""
    _check_state(consulting_request, "cancel")
    by_consultant = (
        consulting_request.consultant_id is not None
        and consulting_request.consultant_id == caller.user_id
        and selectors.is_consultant(caller=caller)
    )
    if not by_consultant:
        role = selectors.caller_team_role(caller=caller, consulting_request=consulting_request)
        if role is None and selectors.is_consultant(caller=caller):
            raise PermissionDenied(
                _("Only the team or the request's consultant may cancel it."),
                code="not_your_request",
            )
        require_role_action(role, Action.CHANGE)
    _move(
        consulting_request,
        action="cancel",
        to=State.CANCELLED,
        cancelled_at=timezone.now(),
        cancelled_by_id=caller.user_id,
    )
    consulting_request.cancelled_by = caller.user
    ledger.reservation_release(key=consulting_request.reservation_key)
    emails.after_commit(
        consulting_request, step="cancelled", to_team=by_consultant, to_consultant=not by_consultant
    )
    return consulting_request
