from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.accounts.models import Membership, User, time_zone_choices


class SignupForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=300, required=False)
    email = forms.EmailField(label=_("E-mail address"))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)


class ProfileForm(forms.ModelForm[User]):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)

    class Meta:
        model = User
        fields = [*User.PROFILE_FIELDS, *User.PREFERENCE_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A zone the picker no longer offers (an alias such as "US/Eastern" chosen earlier)
        # stays selectable for whoever has it, so saving other preferences keeps it.
        current = self.instance.time_zone
        field = self.fields["time_zone"]
        offered = {value for _group, zones in field.choices for value, _label in zones}  # type: ignore[attr-defined]
        if current and current not in offered:
            field.choices = [*field.choices, (_("Other"), [(current, current)])]  # type: ignore[attr-defined]


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=100)


class InvitationForm(forms.Form):
    role = forms.ChoiceField(
        choices=[(r.value, r.label) for r in Membership.Role if r != Membership.Role.OWNER],
        initial=Membership.Role.EDITOR,
    )
    max_uses = forms.IntegerField(
        label=_("Uses"),
        min_value=1,
        required=False,
        initial=1,
        help_text=_("Leave empty for a link anyone with it can use until it expires."),
    )
    valid_days = forms.IntegerField(
        label=_("Valid for (days)"), min_value=1, max_value=90, initial=7
    )
    email = forms.EmailField(
        label=_("Send to (optional)"), required=False, help_text=_("We e-mail the link.")
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    team = forms.TypedChoiceField(
        label=_("Limited to team"), coerce=int, required=False, empty_value=None
    )
    expires_at = forms.DateTimeField(
        label=_("Expires"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args: Any, teams: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", _("All my teams")), *[(t.pk, t.name) for t in teams]]  # type: ignore[attr-defined]
