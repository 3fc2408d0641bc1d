"""Aliases of model versions: a name (`champion`, `challenger`, `staging`…) that points at one
version of a model, moved atomically and audited, with the history of every move.

A move is one transaction: the alias row is locked (`select_for_update` on PostgreSQL; SQLite
takes the write lock when the transaction begins, settings' IMMEDIATE mode), its previous
version read under the lock, the row changed, a ModelAliasEvent and an audit event written.
Two moves at the same moment therefore queue: one row remains, naming the later version, and
the history holds both moves, each with the version the other left.
"""

from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.machines.models import (
    ALIAS_NAME_MAX_LENGTH,
    Machine,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
)

logger = logging.getLogger(__name__)

ALIAS_NAME = re.compile(r"[a-z0-9_-]+")
REASON_MAX_LENGTH = 200
# Aliases per model: names for a few versions, not a tag per version (the list shows all).
MAX_ALIASES = 50
# The aliases the champion/challenger decision moves (services.retraining).
CHAMPION = "champion"
CHALLENGER = "challenger"


def alias_name_check(alias: str) -> str:
    """The alias name, or 400 `invalid_alias`: lowercase letters, digits, - and _, at most
    ALIAS_NAME_MAX_LENGTH characters."""
    if (
        not isinstance(alias, str)
        or len(alias) > ALIAS_NAME_MAX_LENGTH
        or not ALIAS_NAME.fullmatch(alias)
    ):
        raise ApplicationError(
            _(
                "An alias is 1 to %(length)s lowercase letters, digits, “-” or “_” "
                "(e.g. champion, staging-2)."
            )
            % {"length": ALIAS_NAME_MAX_LENGTH},
            code="invalid_alias",
            details={"field": "alias"},
        )
    return alias


def _caller(caller: Caller | None) -> Caller:
    return caller if caller is not None else Caller.system()


def _locked(*, machine: Machine, alias: str) -> ModelAlias | None:
    return (
        ModelAlias.objects.select_for_update()
        .select_related("version")
        .filter(machine=machine, name=alias)
        .first()
    )


@transaction.atomic
def alias_set(
    *,
    caller: Caller | None,
    machine: Machine,
    alias: str,
    version: ModelVersion,
    reason: str = "",
) -> ModelAlias:
    """Point `alias` of `machine` at `version` (a version of that model), creating the alias
    when it does not exist; `caller` None is the platform itself (a retraining decision)."""
    alias = alias_name_check(alias)
    if version.machine_id != machine.pk:
        raise NotFound(_("This model has no such version."))
    caller = _caller(caller)
    reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    row = _locked(machine=machine, alias=alias)
    created = False
    if row is None:
        if ModelAlias.objects.filter(machine=machine).count() >= MAX_ALIASES:
            raise Conflict(
                _("A model has at most %(count)s aliases: remove one first.")
                % {"count": MAX_ALIASES},
                code="too_many_aliases",
            )
        try:
            with transaction.atomic():
                row = ModelAlias.objects.create(
                    team_id=machine.team_id,
                    machine=machine,
                    name=alias,
                    version=version,
                    updated_by=caller.user,
                )
            created = True
        except IntegrityError:
            # Created by a concurrent move after our read: wait for its lock, then move it.
            row = _locked(machine=machine, alias=alias)
            if row is None:  # pragma: no cover - deleted again in between
                raise
    previous = None if created else row.version.number
    if not created:
        if row.version_id == version.pk:
            return row  # already there: a repeated PUT changes nothing and records nothing
        row.version = version
        row.updated_by = caller.user
        row.save(update_fields=["version", "updated_by", "updated_at"])
    ModelAliasEvent.objects.create(
        team_id=machine.team_id,
        machine=machine,
        alias=alias,
        version_number=version.number,
        previous_version_number=previous,
        actor=caller.user,
        reason=reason,
    )
    audit_record(
        caller=caller,
        team=machine.team,
        action=AuditAction.MODEL_ALIAS_SET,
        target=machine,
        changes={alias: (previous, version.number)},
        details={"model": machine.name, "alias": alias, "reason": reason},
    )
    logger.info("model %s: alias %s -> v%s (was v%s)", machine.pk, alias, version.number, previous)
    return row


@transaction.atomic
def alias_delete(*, caller: Caller | None, machine: Machine, alias: str, reason: str = "") -> None:
    """Remove `alias` from `machine`; 404 `alias_not_found` when it has no such alias."""
    alias = alias_name_check(alias)
    caller = _caller(caller)
    row = _locked(machine=machine, alias=alias)
    if row is None:
        raise _alias_not_found(alias)
    previous = row.version.number
    row.delete()
    reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    ModelAliasEvent.objects.create(
        team_id=machine.team_id,
        machine=machine,
        alias=alias,
        version_number=None,
        previous_version_number=previous,
        actor=caller.user,
        reason=reason,
    )
    audit_record(
        caller=caller,
        team=machine.team,
        action=AuditAction.MODEL_ALIAS_DELETED,
        target=machine,
        changes={alias: (previous, None)},
        details={"model": machine.name, "alias": alias, "reason": reason},
    )
    logger.info("model %s: alias %s deleted (was v%s)", machine.pk, alias, previous)


def version_for_alias(*, machine: Machine, alias: str) -> ModelVersion:
    """The version `alias` of `machine` names (one query); 404 `alias_not_found`."""
    alias = alias_name_check(alias)
    version = ModelVersion.objects.filter(machine_id=machine.pk, aliases__name=alias).first()
    if version is None:
        raise _alias_not_found(alias)
    return version


def _alias_not_found(alias: str) -> NotFound:
    return NotFound(
        _("This model has no alias “%(alias)s”.") % {"alias": alias},
        code="alias_not_found",
        details={"alias": alias},
    )
