"""Base model and team-scoped querysets shared by every app."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from django.db import connection, models

_ModelT = TypeVar("_ModelT", bound=models.Model)


class TeamScope(Protocol):
    """What a team-scoped read needs to know about who asks: `mlmanager.accounts.caller.Caller`
    has these (a Protocol, so core names no app)."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def team_limit(self) -> int | None: ...


def deferred_instance(model: type[_ModelT], **values: Any) -> _ModelT:
    """An instance of `model` as if loaded with only these fields (by attribute name, e.g.
    `team_id`); the others load from the database on first use. For rows read by raw SQL on a
    hot path; `from_db` takes the values in the model's field order, which this builds."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    if len(names) != len(values):
        raise ValueError(f"not fields of {model.__name__}: {sorted(set(values) - set(names))}")
    return model.from_db(connection.alias, names, [values[name] for name in names])


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TeamScopedQuerySet(models.QuerySet[_ModelT]):
    """Reads that respect team boundaries: every client-supplied id is looked up through these."""

    def for_team(self, team: models.Model | int) -> TeamScopedQuerySet[_ModelT]:
        return self.filter(team=team)

    def for_caller(self, caller: TeamScope) -> TeamScopedQuerySet[_ModelT]:
        """Objects of the teams the caller is a member of, narrowed to one team when the
        credential is limited to it (a team token); nothing for an anonymous caller."""
        if caller.user_id is None:
            return self.none()
        queryset = self.filter(team__memberships__user_id=caller.user_id)
        if caller.team_limit is not None:
            queryset = queryset.filter(team_id=caller.team_limit)
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
