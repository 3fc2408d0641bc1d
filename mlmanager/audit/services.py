"""Writing the audit log: one call from each service that changes something worth recording."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import models, transaction

from mlmanager.audit.models import AuditAction, AuditEvent

if TYPE_CHECKING:
    from mlmanager.accounts.caller import Caller
    from mlmanager.accounts.models import Team

logger = logging.getLogger(__name__)

TARGET_REPR_LENGTH = AuditEvent._meta.get_field("target_repr").max_length or 200


def _address(raw: str | None) -> str | None:
    """The caller's address, or None when it is not an IP address: the address comes from a
    proxy header, and a malformed one must not fail the change it would be recorded with (an
    `inet` column on PostgreSQL refuses it)."""
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        logger.warning("audit: ignoring the caller's malformed address %r", raw)
        return None


def audit_record(
    *,
    caller: Caller,
    team: Team | None,
    action: AuditAction | str,
    target: models.Model | None = None,
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Records that `caller` did `action` to `target` in `team`, inside the caller's transaction.

    Call it from the service that makes the change, after the change, within that service's
    `transaction.atomic` block: then the change and its record commit together or not at all.
    It deliberately does not open a transaction of its own: outside one (autocommit), the
    record would be committed at once and stay even when the change that follows fails, or be
    missing when the change committed and this insert failed — so it refuses to run there
    (RuntimeError, a programming error the caller's tests catch).

    `changes` maps each changed field to its (before, after) values; `details` holds other
    context (an invitation's role, a token's name and team). Never pass a secret (a raw token,
    a password): events are shown to every owner and admin of the team. Values must be
    JSON-serialisable (dates and decimals are, through Django's encoder).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    action = AuditAction(action)  # ValueError for an action the catalogue does not list
    user = caller.user if caller.is_authenticated else None
    event = AuditEvent(
        team=team,
        actor=user,
        actor_email=user.email if user is not None else "",
        credential=str(caller.credential),
        credential_id=caller.credential_id,
        address=_address(caller.address),
        action=action.value,
        changes={
            field: {"before": before, "after": after}
            for field, (before, after) in (changes or {}).items()
        },
        details=dict(details or {}),
    )
    if target is not None:
        event.target_type = target._meta.model_name or ""
        event.target_id = target.pk
        event.target_repr = str(target)[:TARGET_REPR_LENGTH]
    # The team and the actor are saved objects the caller holds: checking that they exist
    # would cost two queries in every audited change.
    event.full_clean(exclude=["team", "actor"])
    event.save()
    return event
