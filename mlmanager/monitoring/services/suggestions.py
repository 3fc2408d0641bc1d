"""The rules a model's monitoring page suggests, added in one click: input drift (PSI above
0.2 over a day, per input the training profile can compare), accuracy on feedback below the
holdout's by 5 points (per output with a holdout to compare with), and no predictions for a
day. Adding them again adds only those that are missing (matched by name on the model)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.machines.models import Machine
from mlmanager.monitoring import drift
from mlmanager.monitoring.models import AlertRule, Severity
from mlmanager.monitoring.selectors import model_holdout_outputs, model_training_profile
from mlmanager.monitoring.series import MAX_SERIES
from mlmanager.monitoring.services.rules import rule_create

DRIFT_LIMIT = drift.PSI_DRIFT  # 0.2
ACCURACY_MARGIN = 0.05  # 5 points below the holdout's
SILENCE_S = 24 * 3600
DAY_S = 24 * 3600
MAX_NAME = 200
_CLASS_TASKS = {"binary", "multiclass", "classification"}


def holdout_accuracy(output: dict[str, Any]) -> float | None:
    """The holdout's accuracy as the `accuracy` signal measures it: the share of right
    classes, or for amounts the share within 10 % of the true value."""
    metrics = output.get("metrics") or {}
    if output.get("task") in _CLASS_TASKS:
        value = metrics.get("accuracy")
        return float(value) if isinstance(value, int | float) else None
    pairs = metrics.get("predicted_vs_actual") or {}
    accuracy, count = drift.accuracy(
        zip(pairs.get("predicted") or [], pairs.get("actual") or [], strict=False),
        task="regression",
    )
    return accuracy if count else None


def suggested_rules(machine: Machine) -> list[dict[str, Any]]:
    """The suggested rules' fields (for rule_create) for the model."""
    suggestions: list[dict[str, Any]] = []
    profile = model_training_profile(team_id=machine.team_id, machine_id=machine.pk)
    drifting = [
        name
        for name in machine.inputs or []
        if drift.expected_distribution(profile.get(name)) is not None
    ][:MAX_SERIES]
    for name in drifting:
        suggestions.append(
            {
                "name": _("%(model)s: drift of %(input)s") % {"model": machine.name, "input": name},
                "series": [
                    {
                        "kind": "model",
                        "model": machine.pk,
                        "signal": "drift_psi",
                        "input": name,
                        "period_s": DAY_S,
                    }
                ],
                "condition": {"series": 0, "op": "above", "value": DRIFT_LIMIT},
                "severity": Severity.WARNING,
                "evaluate_every_s": 3600,
            }
        )
    for output in model_holdout_outputs(team_id=machine.team_id, machine_id=machine.pk):
        reference = holdout_accuracy(output)
        if reference is None:
            continue
        suggestions.append(
            {
                "name": _("%(model)s: accuracy of %(output)s below the holdout's")
                % {"model": machine.name, "output": output["name"]},
                "series": [
                    {
                        "kind": "model",
                        "model": machine.pk,
                        "signal": "accuracy",
                        "output": output["name"],
                        "period_s": DAY_S,
                    }
                ],
                "condition": {
                    "series": 0,
                    "op": "below",
                    "value": round(max(reference - ACCURACY_MARGIN, 0.0), 4),
                },
                "severity": Severity.WARNING,
                "evaluate_every_s": 3600,
            }
        )
    suggestions.append(
        {
            "name": _("%(model)s: no predictions for a day") % {"model": machine.name},
            "series": [{"kind": "model", "model": machine.pk, "signal": "volume"}],
            "condition": {"series": 0, "op": "no_data", "value": SILENCE_S},
            "severity": Severity.INFO,
            "evaluate_every_s": 3600,
        }
    )
    return suggestions


@transaction.atomic
def rules_suggest_for_model(*, caller: Caller, machine: Machine) -> list[AlertRule]:
    """Create the suggested rules the model does not have yet (found with machines'
    access_machine(action=CHANGE); each is an ordinary rule of the team, made by the
    caller, so rule_create checks and audits it). Returns the rules created."""
    existing = set(
        AlertRule.objects.filter(team_id=machine.team_id, machines=machine).values_list(
            "name", flat=True
        )
    )
    created = []
    for fields in suggested_rules(machine):
        if fields["name"][:MAX_NAME] in existing:
            continue
        fields["name"] = fields["name"][:MAX_NAME]
        created.append(rule_create(caller=caller, team=machine.team, **fields))
    return created
