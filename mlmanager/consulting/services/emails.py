"""Each step of a request e-mails the other side, after the step commits.

The team's side is the request's author while they may still act on it, else every member
who may (editor and up: `selectors.team_recipients`); the consultant's side is the request's
consultant, or every active consultant for a new request (it is in all their queues). Times
are shown in each recipient's time zone; the project has no per-user language yet, so mails
are in the site's language (LANGUAGE_CODE), as every other mail it sends. A mail that cannot
be sent is logged and the step stands (it committed first).
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from mlmanager.accounts.models import User
from mlmanager.billing.money import amount_text
from mlmanager.consulting import selectors
from mlmanager.consulting.models import ConsultingRequest

logger = logging.getLogger(__name__)

STEPS = ("submitted", "approved", "contract", "accepted", "finished", "cancelled")
# Who hears of each step when the caller does not say: the side that did not act.
_TO_TEAM = {"approved", "contract", "finished"}
_TO_CONSULTANT = {"submitted", "accepted"}


def after_commit(
    consulting_request: ConsultingRequest,
    *,
    step: str,
    to_team: bool | None = None,
    to_consultant: bool | None = None,
) -> None:
    """E-mail the other side of `step` once the current transaction commits (never for a
    step that rolled back, e.g. an acceptance refused for lack of credit)."""
    assert step in STEPS, step
    team_side = step in _TO_TEAM if to_team is None else to_team
    consultant_side = step in _TO_CONSULTANT if to_consultant is None else to_consultant
    request_id = consulting_request.pk
    transaction.on_commit(
        lambda: send_step(
            request_id=request_id, step=step, to_team=team_side, to_consultant=consultant_side
        )
    )


def recipients(
    consulting_request: ConsultingRequest, *, step: str, to_team: bool, to_consultant: bool
) -> list[User]:
    people: list[User] = []
    if to_team:
        people += selectors.team_recipients(consulting_request=consulting_request)
    if to_consultant:
        consultant = consulting_request.consultant
        if consultant is not None:
            if consultant.is_active and consultant.email:
                people.append(consultant)
        elif step == "submitted":
            # A new request is in every queue. A request withdrawn before anyone took it
            # just leaves the queue: nobody was waiting on it.
            people += selectors.consultants_to_notify()
    unique: dict[int, User] = {person.pk: person for person in people}
    return list(unique.values())


def send_step(*, request_id: int, step: str, to_team: bool, to_consultant: bool) -> int:
    """Send the step's mail to each recipient; returns how many were sent."""
    consulting_request = (
        ConsultingRequest.objects.select_related("team", "consultant", "created_by", "model")
        .filter(pk=request_id)
        .first()
    )
    if consulting_request is None:
        return 0
    sent = 0
    for person in recipients(
        consulting_request, step=step, to_team=to_team, to_consultant=to_consultant
    ):
        if _send_one(consulting_request, step=step, person=person):
            sent += 1
    return sent


def _context(consulting_request: ConsultingRequest, *, step: str, person: User) -> dict[str, Any]:
    consultant = consulting_request.consultant
    return {
        "step": step,
        "request": consulting_request,
        "recipient": person,
        "team_name": consulting_request.team.name,
        "category": consulting_request.get_category_display(),
        "consultant_name": consultant.display_name if consultant is not None else "",
        "amount": amount_text(consulting_request.amount)
        if consulting_request.amount is not None
        else "",
        "budget_estimate": amount_text(consulting_request.budget_estimate)
        if consulting_request.budget_estimate is not None
        else "",
        "currency": settings.MLMANAGER_BILLING_CURRENCY,
        "billing": settings.MLMANAGER_BILLING,
        "url": settings.MLMANAGER_SITE_URL
        + reverse("consulting:detail", kwargs={"request_id": consulting_request.pk}),
    }


def _send_one(consulting_request: ConsultingRequest, *, step: str, person: User) -> bool:
    context = _context(consulting_request, step=step, person=person)
    try:
        with timezone.override(person.time_zone or "UTC"):
            subject = render_to_string("consulting/emails/step_subject.txt", context)
            body = render_to_string("consulting/emails/step.txt", context)
        send_mail(
            subject=" ".join(subject.split()),
            message=body,
            from_email=None,
            recipient_list=[person.email],
        )
    except (OSError, smtplib.SMTPException):
        # After the commit: the step stands; the request's page shows where it is.
        logger.exception(
            "consulting request %s: the %s e-mail to user %s was not sent",
            consulting_request.pk,
            step,
            person.pk,
        )
        return False
    return True
