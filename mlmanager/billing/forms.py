"""Billing's page forms: redeem a coupon; staff credit a team or record a payment."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import parse_amount
from mlmanager.core.errors import ApplicationError


class AmountFormField(forms.CharField):
    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        try:
            return parse_amount(value, field="amount")
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None


class CouponRedeemForm(forms.Form):
    code = forms.CharField(label=_("Coupon code"), max_length=40)


class _StaffTeamForm(forms.Form):
    team = forms.TypedChoiceField(label=_("Team"), coerce=int)
    amount = AmountFormField(label=_("Amount"), max_length=30)

    def __init__(self, *args: Any, teams: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (team.pk, f"{team.name} (#{team.pk})") for team in teams
        ]


class AccountCreditForm(_StaffTeamForm):
    reason = forms.CharField(label=_("Reason"), max_length=300)
    # Made when the form is shown: a double submit credits once (the ledger's idempotency).
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["idempotency_key"] = f"page-{uuid.uuid4()}"


class PaymentRecordForm(_StaffTeamForm):
    reference = forms.CharField(
        label=_("Reference"),
        max_length=200,
        help_text=_("The bank's or invoice's reference: one payment per reference."),
    )
