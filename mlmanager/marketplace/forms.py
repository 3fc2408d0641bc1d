"""The publish form (from a model's page) and the listing page's "try it" form."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import PLACES
from mlmanager.marketplace.models import Listing


def _amount(label: Any, *, required: bool = True, help_text: Any = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal(0),
        max_digits=15,
        decimal_places=PLACES,
        help_text=help_text,
    )


class JSONObjectField(forms.CharField):
    """A JSON object typed in a text area (a sample row)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("Write one row as a JSON object.")) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError(_("Write one row as a JSON object."))
        return parsed


class ListingPublishForm(forms.Form):
    kind = forms.ChoiceField(label=_("What to sell"), choices=Listing.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    category = forms.ChoiceField(label=_("Category"), choices=Listing.Category.choices)
    price = _amount(
        _("Price"), help_text=_("Per 1 000 predicted rows, or per download of the data.")
    )
    copy_price = _amount(
        _("Price of a copy"),
        required=False,
        help_text=_("Leave empty to not offer copies of the model."),
    )
    copy_update_price = _amount(
        _("Price of a copy update"), required=False, help_text=_("Charged per copy updated.")
    )
    sample_input = JSONObjectField(
        label=_("Sample input"),
        required=False,
        help_text=_("One row of the model's inputs as JSON, for the “try it” form."),
    )


class ListingTryForm(forms.Form):
    row = JSONObjectField(label=_("Input row"))
