"""The sites pages' forms: they check the input's shape; the services check the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mlmanager.sites.models import Sensor, Site, SiteMembership


class SiteForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    location = forms.CharField(label=_("Location"), max_length=200, required=False)
    latitude = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    longitude = forms.FloatField(
        label=_("Longitude"), required=False, min_value=-180, max_value=180
    )
    capacity = forms.FloatField(label=_("Capacity per day"), required=False, min_value=0)
    capacity_unit = forms.CharField(label=_("Unit"), max_length=30, required=False, initial="t")
    status = forms.ChoiceField(
        label=_("Status"), choices=Site.Status.choices, initial=Site.Status.ACTIVE
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    @classmethod
    def initial_of(cls, site: Site) -> dict[str, Any]:
        return {name: getattr(site, name) for name in cls.base_fields}


class ThresholdsForm(forms.Form):
    warning_min = forms.FloatField(label=_("Warning below"), required=False)
    warning_max = forms.FloatField(label=_("Warning above"), required=False)
    critical_min = forms.FloatField(label=_("Critical below"), required=False)
    critical_max = forms.FloatField(label=_("Critical above"), required=False)

    @classmethod
    def initial_of(cls, sensor: Sensor) -> dict[str, Any]:
        return {name: getattr(sensor, name) for name in cls.base_fields}


class SensorForm(ThresholdsForm):
    name = forms.CharField(label=_("Name"), max_length=120)
    sensor_type = forms.ChoiceField(
        label=_("Type"), choices=Sensor.Type.choices, initial=Sensor.Type.TEMPERATURE
    )
    unit = forms.CharField(
        label=_("Unit"),
        max_length=20,
        required=False,
        help_text=_("Leave empty for the type's unit."),
    )
    device_id = forms.CharField(label=_("Device id"), max_length=120)
    location = forms.CharField(label=_("Location"), max_length=200, required=False)
    sampling_interval_s = forms.IntegerField(
        label=_("Sampling interval (s)"), min_value=1, initial=60
    )

    field_order = ["name", "sensor_type", "unit", "device_id", "location", "sampling_interval_s"]


class CalibrateForm(forms.Form):
    reference_value = forms.FloatField(
        label=_("Reference value"),
        help_text=_("What the latest reading should have read; the offset is set to match."),
    )


class ProductionForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    actual = forms.FloatField(label=_("Produced"), min_value=0)


class MemberForm(forms.Form):
    user = forms.TypedChoiceField(label=_("Team member"), coerce=int)
    role = forms.ChoiceField(label=_("Role"), choices=SiteMembership.Role.choices)

    def __init__(self, *args: Any, members: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = members  # type: ignore[attr-defined]


class DeviceKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Key name, e.g. Gateway 1")}),
    )
