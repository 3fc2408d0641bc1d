"""Users (e-mail login), teams, memberships with roles, invitations and API tokens."""

from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any, ClassVar

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mlmanager.core.models import TimeStampedModel

# Shown first in the time-zone picker: where most people live or work, one zone per large
# city or country; every other zone follows, grouped by region.
COMMON_TIME_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Toronto",
    "America/Mexico_City",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "Europe/London",
    "Europe/Lisbon",
    "Europe/Madrid",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Zurich",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Nairobi",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
)
# The tz database's geographic regions. Names outside them are aliases kept for old systems
# ("US/Eastern", "Etc/GMT+5", "EST") or not places at all ("Factory"): valid, never offered.
TIME_ZONE_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


def _place(name: str) -> str:
    return name.replace("_", " ")


def time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's groups (<optgroup>s): common zones, then each region's zones by name."""
    available = zoneinfo.available_timezones()
    groups: list[tuple[str, list[tuple[str, str]]]] = [
        (
            str(_("Common")),
            [(name, _place(name)) for name in COMMON_TIME_ZONES if name in available],
        )
    ]
    for region in TIME_ZONE_REGIONS:
        names = sorted(name for name in available if name.startswith(f"{region}/"))
        if names:
            groups.append((region, [(name, _place(name.split("/", 1)[1])) for name in names]))
    return groups


def validate_time_zone(value: str) -> None:
    """A validator, not `choices`: the list of zones comes from the machine's tz database and
    would otherwise be frozen into migrations."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(zone)s"), params={"zone": value})


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an e-mail address; display preferences follow them everywhere."""

    class TimeFormat(models.TextChoices):
        H24 = "24", _("24-hour (17:30)")
        H12 = "12", _("12-hour (5:30 PM)")

    class DateOrder(models.TextChoices):
        DMY = "DMY", _("day month year")
        MDY = "MDY", _("month day year")
        YMD = "YMD", _("year month day")

    class DateSeparator(models.TextChoices):
        SLASH = "/", "/"
        DASH = "-", "-"
        DOT = ".", "."

    class DecimalSeparator(models.TextChoices):
        POINT = ".", _("point (1,234.5)")
        COMMA = ",", _("comma (1.234,5)")

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("e-mail address"), unique=True)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone], default="UTC")
    time_format = models.CharField(max_length=2, choices=TimeFormat.choices, default=TimeFormat.H24)
    date_order = models.CharField(max_length=3, choices=DateOrder.choices, default=DateOrder.YMD)
    date_separator = models.CharField(
        max_length=1, choices=DateSeparator.choices, default=DateSeparator.DASH
    )
    decimal_separator = models.CharField(
        max_length=1, choices=DecimalSeparator.choices, default=DecimalSeparator.POINT
    )
    current_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # What a user may change about themselves (profile page, services.user_update_profile).
    PROFILE_FIELDS = ("first_name", "last_name")
    PREFERENCE_FIELDS = (
        "time_zone",
        "time_format",
        "date_order",
        "date_separator",
        "decimal_separator",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[assignment,misc]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email

    @property
    def is_awaiting_activation(self) -> bool:
        """Signed up, but the mailbox has not followed the activation link yet (activating logs
        in; an account an admin deactivated has logged in before)."""
        return not self.is_active and self.last_login is None


class Team(TimeStampedModel):
    """A workspace: every dataset, model and job belongs to exactly one team."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    """A user's role in a team. Roles are ordered: each can do everything the one below can."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        EDITOR = "editor", _("Editor")
        VIEWER = "viewer", _("Viewer")

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Invitation(TimeStampedModel):
    """A link that lets people join a team with a given role until it expires or is revoked."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    token = models.CharField(max_length=64, unique=True)
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.EDITOR
    )
    email = models.EmailField(blank=True, help_text=_("Set when the link was sent by e-mail."))
    max_uses = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty for unlimited uses.")
    )
    use_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="owner"), name="invitation_role_not_owner"
            )
        ]

    def __str__(self) -> str:
        return f"invitation to {self.team}"

    @property
    def is_usable(self) -> bool:
        return (
            self.revoked_at is None
            and self.expires_at > timezone.now()
            and (self.max_uses is None or self.use_count < self.max_uses)
        )


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(TimeStampedModel):
    """A bearer token for the API. Only its SHA-256 is stored; the raw value is shown once.

    `team` set: the token only reaches that team's objects. Empty: all of its user's teams.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text=_("First characters, to recognise it."))
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )
