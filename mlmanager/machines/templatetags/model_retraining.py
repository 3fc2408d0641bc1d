"""The model page's alias form (under the versions list) and Retraining section."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.dates import WEEKDAYS

from mlmanager.machines import selectors
from mlmanager.machines.models import RetrainingPolicy
from mlmanager.machines.services import retraining

register = template.Library()

DECISIONS_SHOWN = 10


@register.inclusion_tag("machines/partials/_alias_form.html", takes_context=True)
def alias_form(context: template.Context, machine: Any, versions: Any) -> dict[str, Any]:
    return {
        "machine": machine,
        "versions": versions,
        "can_change": context.get("can_change", False),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("machines/partials/_retraining.html", takes_context=True)
def retraining_section(context: template.Context, machine: Any) -> dict[str, Any]:
    policy = retraining.retraining_policy_of(machine=machine)
    return {
        "machine": machine,
        "policy": policy,
        "schedules": RetrainingPolicy.Schedule.choices,
        "weekdays": sorted(WEEKDAYS.items()),
        "new_rows": retraining.new_rows(machine=machine, policy=policy),
        "decisions": list(selectors.retraining_decisions(machine=machine)[:DECISIONS_SHOWN]),
        "can_change": context.get("can_change", False),
        "csrf_token": context.get("csrf_token"),
    }
