"""Filters of the audit log, one FilterSet for the page and the API (validation: core.filters).

`action` is an action or a whole family of them (`invitation` = every invitation event),
`actor` a user's e-mail address or id (the e-mail also finds a deleted user's events),
`since`/`until` ISO 8601 dates or date-times (`2026-12-07`, `2026-12-07T14:30:00Z`; without an
offset, in the active time zone: the user's on pages; a date alone is that whole day for
`until`), `target_type`/`target_id` the object.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from mlmanager.audit.models import ACTION_GROUPS, AuditAction, AuditEvent
from mlmanager.core.filters import (
    MAX_ID,
    FilterSet,
    PositiveIntegerFilter,
    created_since,
    created_until,
)


def action_choices() -> list[tuple[str, Any]]:
    """The families first, then each action (a select's options, and what the API accepts)."""
    return [*ACTION_GROUPS.items(), *AuditAction.choices]


class MomentField(forms.Field):
    """An ISO 8601 date (a `datetime.date`) or date-time (an aware `datetime.datetime`)."""

    default_error_messages = {
        "invalid": _(
            "Enter a date or a date and time in ISO 8601, e.g. 2026-12-07 or 2026-12-07T14:30:00Z."
        ),
    }

    def to_python(self, value: Any) -> dt.date | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            # The date first: parse_datetime would read a date alone as its midnight.
            moment: dt.date | None = parse_date(text) or parse_datetime(text)
        except ValueError:  # well formed, not a real date (2026-02-30)
            moment = None
        if moment is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if isinstance(moment, dt.datetime):
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            try:  # the database compares in UTC: year 1 east of UTC has no UTC moment
                moment.astimezone(dt.UTC)
            except OverflowError:
                # A valid ISO 8601 moment just outside what UTC holds: the nearest end of time.
                end = dt.datetime.min if moment.year == dt.MINYEAR else dt.datetime.max
                moment = end.replace(tzinfo=dt.UTC)
        return moment


# minLength: the API refuses an empty parameter (core.filters), so the schema says so.
# Documented as a date-time (a date alone is accepted too).
@extend_schema_field({"type": "string", "format": "date-time", "example": "2026-12-07T14:30:00Z"})
class MomentFilter(django_filters.Filter):
    field_class = MomentField


class ActorField(forms.CharField):
    """A user's id (a whole number) or e-mail address. Any other text is compared with the
    recorded e-mail addresses as it is (and so finds nothing), not refused: the e-mail of a
    deleted user's events is kept as it was written, whatever its form."""

    def to_python(self, value: Any) -> int | str | None:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return None
        if text.isdigit() and 1 <= int(text) <= MAX_ID:
            return int(text)
        return text


@extend_schema_field({"type": "string", "minLength": 1, "example": "ada@example.com"})
class ActorFilter(django_filters.Filter):
    field_class = ActorField


@extend_schema_field({"type": "string", "enum": [value for value, _label in action_choices()]})
class ActionFilter(django_filters.ChoiceFilter):
    """An action or a family; documented without the page select's empty "any" option."""


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[a-z_]+$"})
class TargetTypeFilter(django_filters.CharFilter):
    pass


class AuditEventFilter(FilterSet):
    """The page's and the API's filters (the API adds `team`)."""

    action = ActionFilter(
        label=_("Action"), choices=action_choices, method="filter_action", empty_label=_("any")
    )
    actor = ActorFilter(
        label=_("Who"),
        method="filter_actor",
        help_text=_("A user's e-mail address or id."),
        widget=forms.TextInput(attrs={"placeholder": _("e-mail or id")}),
    )
    since = MomentFilter(
        label=_("From"),
        method="filter_since",
        help_text=_("ISO 8601 date or date-time; events at or after it."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = MomentFilter(
        label=_("To"),
        method="filter_until",
        help_text=_("ISO 8601 date (through that whole day) or date-time; events up to it."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    target_type = TargetTypeFilter(
        label=_("Object type"),
        field_name="target_type",
        max_length=60,
        validators=[RegexValidator(r"^[a-z_]+$", _("Enter an object type such as membership."))],
        help_text=_("What the action touched: membership, invitation, apitoken, dataset..."),
    )
    target_id = PositiveIntegerFilter(
        label=_("Object id"), field_name="target_id", help_text=_("The object's id.")
    )

    class Meta(FilterSet.Meta):
        model = AuditEvent
        fields: list[str] = []

    def filter_action(
        self, queryset: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        if value in ACTION_GROUPS:
            return queryset.filter(action__startswith=f"{value}.")
        return queryset.filter(action=value)

    def filter_actor(
        self, queryset: QuerySet[AuditEvent], name: str, value: int | str
    ) -> QuerySet[AuditEvent]:
        if isinstance(value, int):
            return queryset.filter(actor_id=value)
        return queryset.filter(actor_email__iexact=value)

    def filter_since(
        self, queryset: QuerySet[AuditEvent], name: str, value: dt.date
    ) -> QuerySet[AuditEvent]:
        return created_since(queryset, value)

    def filter_until(
        self, queryset: QuerySet[AuditEvent], name: str, value: dt.date
    ) -> QuerySet[AuditEvent]:
        return created_until(queryset, value)


class AuditEventApiFilter(AuditEventFilter):
    team = PositiveIntegerFilter(field_name="team_id", help_text=_("A team's id."))
