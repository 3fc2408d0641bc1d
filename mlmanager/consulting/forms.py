from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import MAX_DIGITS, PLACES
from mlmanager.consulting.attachments import ALLOWED_EXTENSIONS
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.services.requests import MAX_DELAY_DAYS


class ConsultingRequestForm(forms.Form):
    category = forms.ChoiceField(label=_("Category"), choices=ConsultingRequest.Category.choices)
    description = forms.CharField(
        label=_("What do you need help with?"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    model = forms.TypedChoiceField(
        label=_("Model (optional)"), required=False, coerce=int, empty_value=None
    )
    attachment = forms.FileField(
        label=_("Attachment (optional)"),
        required=False,
        allow_empty_file=True,  # the service explains emptiness in its own words
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(sorted(ALLOWED_EXTENSIONS))}),
    )

    def __init__(self, *args: Any, models: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", _("None"))] + [  # type: ignore[attr-defined]
            (model.pk, model.name) for model in models
        ]


class ContractForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), min_value=0, max_digits=MAX_DIGITS, decimal_places=PLACES
    )
    budget_estimate = forms.DecimalField(
        label=_("Budget estimate"), min_value=0, max_digits=MAX_DIGITS, decimal_places=PLACES
    )
    delay_days = forms.IntegerField(label=_("Delay (days)"), min_value=0, max_value=MAX_DELAY_DAYS)
