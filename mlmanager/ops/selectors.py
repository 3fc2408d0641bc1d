"""Reads of the platform log, for staff only."""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import NotFound
from mlmanager.ops.models import PlatformLogEntry


def _require_staff(caller: Caller) -> None:
    """The log holds every team's errors, addresses and internals: staff only. Others get
    404, as if there were no such page."""
    user = caller.user
    if user is None or not user.is_active or not user.is_staff:
        raise NotFound()


def platform_log_entries(*, caller: Caller) -> QuerySet[PlatformLogEntry]:
    """Every entry, newest first, without its traceback (a list shows only whether there is
    one: `has_traceback`)."""
    _require_staff(caller)
    return (
        PlatformLogEntry.objects.defer("traceback")
        .annotate(has_traceback=ExpressionWrapper(~Q(traceback=""), output_field=BooleanField()))
        .order_by("-created_at", "-pk")
    )


def access_platform_log_entry(*, caller: Caller, entry_id: int) -> PlatformLogEntry:
    _require_staff(caller)
    try:
        return PlatformLogEntry.objects.get(pk=entry_id)
    except PlatformLogEntry.DoesNotExist:
        raise NotFound() from None
