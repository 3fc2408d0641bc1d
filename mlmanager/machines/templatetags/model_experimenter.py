"""The model page's Experimenter section: rules that answer while the model has no version."""

from __future__ import annotations

from typing import Any

from django import template

from mlmanager.machines.services import experimenter

register = template.Library()


@register.inclusion_tag("machines/partials/_experimenter.html", takes_context=True)
def experimenter_section(context: template.Context, machine: Any) -> dict[str, Any]:
    rules = dict(machine.experimenter_rules or {})
    return {
        "machine": machine,
        "rows": [{"output": name, "rule": rules.get(name, "")} for name in machine.output_names],
        "has_rules": bool(rules),
        "rule_names": sorted(experimenter.rule_names(list(machine.inputs))),
        "max_length": experimenter.MAX_RULE_LENGTH,
        "can_change": context.get("can_change", False),
        "csrf_token": context.get("csrf_token"),
    }
