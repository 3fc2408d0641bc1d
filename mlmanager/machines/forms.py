from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.engine.training import LEVEL_BUDGET_S, METRICS, TASKS

CUSTOM_BUDGET = "custom"
# What the model wizard does after creating the model (its two submit buttons).
CREATE_AND_TRAIN = "train"
CREATE_ONLY = "create"


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return _("%(minutes)s min") % {"minutes": f"{seconds / 60:g}"}
    return _("%(hours)s h") % {"hours": f"{seconds / 3600:g}"}


def level_choices() -> list[tuple[str, Any]]:
    levels = [
        (
            str(level),
            _("Level %(level)s · %(duration)s") % {"level": level, "duration": _duration(seconds)},
        )
        for level, seconds in LEVEL_BUDGET_S.items()
    ]
    return [*levels, (CUSTOM_BUDGET, _("Seconds, as set below"))]


def metric_choices() -> list[Any]:
    return [
        ("", _("the task's default")),
        *[(task, [(m, m) for m in METRICS[task]]) for task in TASKS],
    ]


class OutputsForm(forms.Form):
    """Step 1: the columns to predict."""

    def __init__(self, *args: Any, columns: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["outputs"] = forms.MultipleChoiceField(
            label=_("Columns to predict"),
            widget=forms.CheckboxSelectMultiple,
            choices=[(c["name"], c["name"]) for c in columns],
        )


class ModelChoicesForm(forms.Form):
    """What every new model is asked: name, description, time budget, and whether to train at
    once. A model of images asks nothing else: its input and output come from the dataset."""

    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    level = forms.ChoiceField(label=_("Time budget"), initial="1", choices=level_choices)
    time_budget_s = forms.IntegerField(label=_("Seconds"), required=False)
    # Set by the button pressed; anything else (Enter in a field) creates and trains.
    then = forms.ChoiceField(
        choices=[(CREATE_AND_TRAIN, _("Create and train")), (CREATE_ONLY, _("Create only"))],
        required=False,
    )

    def clean_then(self) -> str:
        return self.cleaned_data.get("then") or CREATE_AND_TRAIN

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        custom = data["level"] == CUSTOM_BUDGET
        return {
            "name": data["name"],
            "description": data["description"],
            "level": None if custom else int(data["level"]),
            # An empty seconds field with "seconds" chosen is a budget of 0: refused in words.
            "time_budget_s": (data["time_budget_s"] or 0) if custom else None,
        }


class ReviewForm(ModelChoicesForm):
    """Step 2: inputs, task and metric per output, and the time budget."""

    def __init__(
        self,
        *args: Any,
        outputs: list[dict[str, str]],
        input_columns: list[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.output_names = [output["name"] for output in outputs]
        self.fields["inputs"] = forms.MultipleChoiceField(
            label=_("Inputs"),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            choices=[(name, name) for name in input_columns],
        )
        for index, output in enumerate(outputs):
            self.fields[f"task_{index}"] = forms.ChoiceField(
                label=_("Task"), choices=[(t, t) for t in TASKS], initial=output["task"]
            )
            self.fields[f"metric_{index}"] = forms.ChoiceField(
                label=_("Metric"), choices=metric_choices(), required=False
            )

    def output_fields(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [
            (name, self[f"task_{index}"], self[f"metric_{index}"])
            for index, name in enumerate(self.output_names)
        ]

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **super().service_arguments(),
            "inputs": list(data["inputs"]),
            "outputs": [
                {
                    "name": name,
                    "task": data[f"task_{index}"],
                    **({"metric": data[f"metric_{index}"]} if data[f"metric_{index}"] else {}),
                }
                for index, name in enumerate(self.output_names)
            ],
        }


class MachineEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    level = forms.ChoiceField(label=_("Time budget"), choices=level_choices)
    time_budget_s = forms.IntegerField(label=_("Seconds"), required=False)

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        custom = data["level"] == CUSTOM_BUDGET
        return {
            "name": data["name"],
            "description": data["description"],
            "level": None if custom else int(data["level"]),
            "time_budget_s": (data["time_budget_s"] or 0) if custom else None,
        }
