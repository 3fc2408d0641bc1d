"""Webhooks: where alert notifications are POSTed, signed with a secret the server makes.

A webhook belongs to its team; creating, changing, testing, listing and naming one in a rule
all need the team's MANAGE right (it holds a secret). The secret is shown once, in the answer
of the creation.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Team
from mlmanager.accounts.selectors import teams_with_role_for_caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import ROLE_ACTIONS, Action
from mlmanager.core.errors import Conflict
from mlmanager.monitoring.models import Webhook
from mlmanager.monitoring.services.delivery import webhook_post, webhook_url_check

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that marks the value, no secret


def webhooks_for_caller(caller: Caller) -> QuerySet[Webhook]:
    """The webhooks of the teams the caller manages."""
    managed = [
        team.pk
        for team in teams_with_role_for_caller(caller=caller)
        if Action.MANAGE in ROLE_ACTIONS[team.role]  # type: ignore[attr-defined]
    ]
    return Webhook.objects.for_caller(caller).filter(team_id__in=managed)


def _save(webhook: Webhook) -> None:
    # The unique name is left to the database: a concurrent request's too is 409.
    webhook.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:
        raise Conflict(
            _("This team already has a webhook with that name."), code="already_exists"
        ) from None


@transaction.atomic
def webhook_create(
    *, caller: Caller, team: Team, name: str, url: str, active: bool = True
) -> tuple[Webhook, str]:
    """A new webhook of the team, and its secret (returned here only)."""
    require_team_action(caller=caller, team_id=team.pk, action=Action.MANAGE)
    webhook_url_check(url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook = Webhook(team=team, name=name.strip(), url=url, secret=secret, active=active)
    _save(webhook)
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.WEBHOOK_CREATED,
        target=webhook,
        details={"name": webhook.name, "url": webhook.url},
    )
    return webhook, secret


@transaction.atomic
def webhook_update(*, caller: Caller, webhook: Webhook, **fields: Any) -> Webhook:
    """Change a webhook's name, URL or whether it is active (found with `access_webhook`)."""
    changes = {}
    for name in ("name", "url", "active"):
        if name in fields and getattr(webhook, name) != fields[name]:
            changes[name] = (getattr(webhook, name), fields[name])
            setattr(webhook, name, fields[name])
    if not changes:
        return webhook
    if "url" in changes:
        webhook_url_check(webhook.url)
    _save(webhook)
    audit_record(
        caller=caller,
        team=webhook.team,
        action=AuditAction.WEBHOOK_CHANGED,
        target=webhook,
        changes=changes,
    )
    return webhook


@transaction.atomic
def webhook_delete(*, caller: Caller, webhook: Webhook) -> None:
    """Delete a webhook; rules naming it no longer notify it (their target is skipped)."""
    audit_record(
        caller=caller,
        team=webhook.team,
        action=AuditAction.WEBHOOK_DELETED,
        target=webhook,
        details={"name": webhook.name, "url": webhook.url},
    )
    webhook.delete()


def webhook_test(*, caller: Caller, webhook: Webhook) -> dict[str, Any]:
    """Send a signed `ping` (its `alert` is null) now and say how the receiver answered."""
    del caller  # access_webhook checked the right; a ping changes nothing to record
    delivery = f"ping-{webhook.pk}-{int(timezone.now().timestamp())}"
    try:
        response = webhook_post(webhook=webhook, event="ping", alert=None, delivery=delivery)
    except Exception as error:
        # The URL refused by the SSRF rules, a timeout, a refused connection: the answer says.
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        return {"ok": False, "status_code": None, "error": str(message)[:500]}
    ok = 200 <= response.status_code < 300
    return {
        "ok": ok,
        "status_code": response.status_code,
        "error": ""
        if ok
        else _("The receiver answered HTTP %(status)s.") % {"status": response.status_code},
    }
