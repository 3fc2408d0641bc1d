"""The platform log in the Django admin, for staff: read only. Entries leave by retention
(ops.services.platform_log_delete_expired), not by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mlmanager.core.admin import ReadOnlyAdmin
from mlmanager.ops.models import PlatformLogEntry


@admin.register(PlatformLogEntry)
class PlatformLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "level", "process", "host", "logger", "message"]
    list_filter = ["level", "process"]
    search_fields = ["message", "logger", "request_id", "host"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]
    show_full_result_count = False  # a COUNT of a large log on every page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
