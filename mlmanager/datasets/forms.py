from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.engine.ingest import SUPPORTED_EXTENSIONS
from mlmanager.engine.profiling import COLUMN_TYPES


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        allow_empty_file=True,  # the service explains emptiness in its own words
        widget=forms.ClearableFileInput(
            attrs={"accept": ",".join(sorted({*SUPPORTED_EXTENSIONS, ".zip"}))}
        ),
    )
    name = forms.CharField(label=_("Name"), max_length=200, required=False)


class RenameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)


class ColumnTypeForm(forms.Form):
    column = forms.CharField()
    type = forms.ChoiceField(
        choices=[("", _("detected")), *[(t, t) for t in COLUMN_TYPES]], required=False
    )


class AppendRowsForm(forms.Form):
    """Rows to append to a table, as a file (a new version of the dataset)."""

    file = forms.FileField(
        label=_("File of rows"),
        allow_empty_file=True,  # the service explains emptiness in its own words
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(sorted(SUPPORTED_EXTENSIONS))}),
    )
