"""The single-prediction form, generated from a version's input schema, the batch form, and
an image model's forms (one image to predict; a review)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.predictions.models import BatchPrediction, ReviewStatus
from mlmanager.predictions.reviews import NOTE_MAX_LENGTH
from mlmanager.predictions.schema import InputField, InputSchema, number_text

# Categories with at most this many values seen in training get a drop-down; more, a text
# field with the frequent values as suggestions.
SELECT_MAX_CHOICES = 30


class PredictForm(forms.Form):
    """One field per input: numbers (typed with the user's decimal separator), drop-downs (or
    suggestions) for categories, a yes/no choice, a date or date-and-time picker, text areas.
    Every field may stay empty (unknown). After an answer, `warnings` holds per input what
    training did not see (InputSchema.warnings), shown next to the field."""

    def __init__(
        self,
        *args: Any,
        schema: InputSchema,
        columns: dict[str, dict],
        decimal_separator: str = ".",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        self.decimal_separator = decimal_separator
        self.warnings: dict[str, list[str]] = {}
        for field in schema.fields:
            profile = columns.get(field.name, {})
            self.fields[field.name] = _form_field(field, profile, decimal_separator)
            self.fields[field.name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for field in self.schema.fields:
            raw = self.data.get(field.name, "")
            try:
                cleaned[field.name] = self.schema.clean_value(
                    field, raw, decimal_separator=self.decimal_separator
                )
            except ValueError as error:
                self.add_error(field.name, str(error))
        return cleaned

    def fields_with_warnings(self) -> list[tuple[forms.BoundField, str, list[str]]]:
        """Per input: its field, what it takes in a word or two, and its warnings."""
        return [
            (
                field,
                str(_KIND_HINTS.get(self.schema.by_name[field.name].type, "")),
                self.warnings.get(field.name, []),
            )
            for field in self
        ]


# Shown next to each label: number fields are text fields (see _form_field), so the widget's
# input type no longer says what a field takes.
_KIND_HINTS = {
    "numeric": _("number"),
    "integer": _("whole number"),
    "boolean": _("yes or no"),
    "datetime": _("date"),
    "categorical": _("category"),
    "text": _("text"),
    "json": _("JSON"),
}


def _form_field(field: InputField, profile: dict, decimal_separator: str) -> forms.Field:
    kind = field.type
    stats = profile.get("stats") or {}
    values = [str(item["value"]) for item in stats.get("top_values") or []]
    if kind in ("numeric", "integer"):
        # Text, not type="number": a number input reads "49,5" by the browser's locale (or
        # drops it), whatever the user's preferences say; the form reads it (parse_number).
        attrs = {"inputmode": "decimal", "autocomplete": "off"}
        low = field.low if field.low is not None else stats.get("min")
        high = field.high if field.high is not None else stats.get("max")
        if low is not None and high is not None:
            attrs["placeholder"] = _("seen from %(low)s to %(high)s") % {
                "low": number_text(low, decimal_separator),
                "high": number_text(high, decimal_separator),
            }
        return forms.CharField(widget=forms.TextInput(attrs=attrs))
    if kind == "boolean":
        return forms.ChoiceField(
            choices=[("", _("unknown")), ("true", _("yes")), ("false", _("no"))]
        )
    if kind == "datetime":
        if _dates_only(stats):
            return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}))
        return forms.CharField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    if kind in ("text", "json"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    if values and len(values) <= SELECT_MAX_CHOICES and not stats.get("other_count"):
        return forms.ChoiceField(choices=[("", _("unknown")), *[(v, v) for v in values]])
    return forms.CharField(widget=SuggestionsInput(values))


def _dates_only(stats: dict) -> bool:
    """A date column: its first and last moments are midnights (the profile keeps no more of
    the values; a column of times that starts and ends at midnight gets a date picker too,
    and a time can still be sent through the API)."""
    moments = [stats.get("min"), stats.get("max")]
    return all(isinstance(moment, str) and moment[10:] in ("", "T00:00:00") for moment in moments)


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

    def __init__(
        self, *args: Any, datasets: list[tuple[int, str]], images: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].widget.choices = [("", "—"), *datasets]  # type: ignore[attr-defined]
        if images:  # an image model: a zip of images, answered into a CSV (and masks)
            for name in ("dataset", "pass_through", "format"):
                del self.fields[name]
            self.fields["file"].label = _("Zip of images (PNG, JPEG, TIFF, BMP, DICOM)")

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


class ImagePredictForm(forms.Form):
    """One image for an image model's form (the API takes several)."""

    image = forms.FileField(
        label=_("Image (PNG, JPEG, TIFF, BMP or DICOM)"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,.dcm,.dicom"}),
    )


class ReviewForm(forms.Form):
    status = forms.ChoiceField(choices=ReviewStatus.choices, label=_("Review"))
    label = forms.ChoiceField(
        required=False,
        label=_("True label (for a correction)"),
        choices=[],
    )
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_LENGTH,
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, classes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "—"), *[(name, name) for name in classes]]  # type: ignore[attr-defined]
        if not classes:  # a segmentation: confirmed or rejected, no label
            del self.fields["label"]
            self.fields["status"].choices = [  # type: ignore[attr-defined]
                (value, label)
                for value, label in ReviewStatus.choices
                if value != ReviewStatus.CORRECTED
            ]
