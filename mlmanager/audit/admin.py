"""The audit log in the Django admin, for staff: read only, no deleting (not even in bulk)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mlmanager.audit.models import AuditEvent
from mlmanager.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "action", "actor_email", "credential", "target_repr"]
    list_filter = ["action", "credential"]
    search_fields = ["actor_email", "action", "target_repr", "team__name", "address"]
    list_select_related = ["team"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # ReadOnlyAdmin lets staff delete; the log must not offer it (this also removes the
        # "delete selected" bulk action).
        return False
