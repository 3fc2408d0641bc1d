"""Base model and team-scoped querysets shared by every app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from mlmanager.accounts.models import Team, User

_ModelT = TypeVar("_ModelT", bound=models.Model)


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TeamScopedQuerySet(models.QuerySet[_ModelT]):
    """Reads that respect team boundaries: every client-supplied id is looked up through these."""

    def for_team(self, team: Team | int) -> TeamScopedQuerySet[_ModelT]:
        return self.filter(team=team)

    def for_user(self, user: User | Any) -> TeamScopedQuerySet[_ModelT]:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        queryset = self.filter(team__memberships__user=user)
        # A team-restricted API token narrows the caller to that one team.
        restricted_team_id = getattr(user, "restricted_team_id", None)
        if restricted_team_id is not None:
            queryset = queryset.filter(team_id=restricted_team_id)
        return queryset


class TeamOwnedModel(TimeStampedModel):
    """An object that belongs to exactly one team; the team decides who may see it."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")

    objects = TeamScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class RequestCount(models.Model):
    """Requests one caller made in one rate-limit window (core.throttling), counted in the
    database when no Redis is configured, so every web process of the embedded default reads
    the same count. The key names the limit, the caller and the window; rows of past windows
    are deleted as new windows begin."""

    key = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField()
    # Seconds since the epoch (not a DateTimeField): the counter's upsert is one raw statement
    # on SQLite and PostgreSQL alike, and an integer compares the same on both.
    expires_at = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
