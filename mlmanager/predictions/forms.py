"""The single-prediction form, generated from a version's input schema, and the batch form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.predictions.models import BatchPrediction
from mlmanager.predictions.schema import InputSchema

# Categories with at most this many values seen in training get a drop-down; more, a text
# field with the frequent values as suggestions.
SELECT_MAX_CHOICES = 30


class PredictForm(forms.Form):
    """One field per input: numbers, drop-downs (or suggestions) for categories, a yes/no
    choice, a date-and-time picker, text areas. Every field may stay empty (unknown)."""

    def __init__(
        self, *args: Any, schema: InputSchema, columns: dict[str, dict], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        for field in schema.fields:
            profile = columns.get(field.name, {})
            self.fields[field.name] = _form_field(field.type, profile)
            self.fields[field.name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for field in self.schema.fields:
            raw = self.data.get(field.name, "")
            try:
                cleaned[field.name] = self.schema.clean_value(field, raw)
            except ValueError as error:
                self.add_error(field.name, str(error))
        return cleaned


def _form_field(kind: str, profile: dict) -> forms.Field:
    stats = profile.get("stats") or {}
    values = [str(item["value"]) for item in stats.get("top_values") or []]
    if kind in ("numeric", "integer"):
        attrs = {"step": "1" if kind == "integer" else "any"}
        if stats.get("min") is not None and stats.get("max") is not None:
            attrs["placeholder"] = _("seen from %(low)s to %(high)s") % {
                "low": stats["min"],
                "high": stats["max"],
            }
        return forms.CharField(widget=forms.NumberInput(attrs=attrs))
    if kind == "boolean":
        return forms.ChoiceField(
            choices=[("", _("unknown")), ("true", _("yes")), ("false", _("no"))]
        )
    if kind == "datetime":
        return forms.CharField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    if kind in ("text", "json"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    if values and len(values) <= SELECT_MAX_CHOICES and not stats.get("other_count"):
        return forms.ChoiceField(choices=[("", _("unknown")), *[(v, v) for v in values]])
    return forms.CharField(widget=SuggestionsInput(values))


class SuggestionsInput(forms.TextInput):
    """A text field with a <datalist> of frequent values."""

    template_name = "predictions/widgets/suggestions.html"

    def __init__(self, suggestions: list[str]):
        super().__init__()
        self.suggestions = suggestions

    def get_context(self, name: str, value: Any, attrs: Any) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["list"] = f"suggest-{name}"
        context["suggestions"] = self.suggestions
        return context


class BatchForm(forms.Form):
    file = forms.FileField(required=False, label=_("File (CSV, Parquet, Excel, JSON Lines)"))
    # A number, not a choice among the shown datasets: the service looks it up within the
    # model's team, so a dataset of another team is "not found" on pages as in the API.
    dataset = forms.IntegerField(required=False, label=_("or a dataset"), widget=forms.Select)
    pass_through = forms.CharField(
        required=False,
        max_length=2000,
        label=_("Dataset columns to keep (comma-separated)"),
        help_text=_("Besides the model's inputs; an uploaded file keeps all its columns."),
    )
    format = forms.ChoiceField(
        choices=BatchPrediction.Format.choices,
        initial=BatchPrediction.Format.CSV,
        label=_("Result format"),
    )

    def __init__(self, *args: Any, datasets: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].widget.choices = [("", "—"), *datasets]  # type: ignore[attr-defined]

    def clean_pass_through(self) -> list[str]:
        text = self.cleaned_data.get("pass_through") or ""
        return [name.strip() for name in text.split(",") if name.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if bool(cleaned.get("file")) == bool(cleaned.get("dataset")):
            raise forms.ValidationError(_("Upload a file or choose a dataset (one of the two)."))
        return cleaned


class FeedbackForm(forms.Form):
    actual = forms.CharField(label=_("True value"), max_length=500)
