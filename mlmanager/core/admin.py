"""What every app's admin shares, and the rate-limit counters in the Django admin (/admin/).

The admin is the staff's window on the platform: they look, search and filter everywhere, and
change only what no service has to follow up (names, roles, flags). Rows a service keeps
consistent with files or other rows (artifacts, hashes, counters, timestamps) are read-only
there, and deleting what owns files goes through the owning app's service.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mlmanager.core.models import RequestCount

# TimeStampedModel's fields: set by the database layer, never by hand.
TIMESTAMPS = ("created_at", "updated_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the platform itself (counters, slots, the prediction log): staff
    may look and delete, never add or edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RequestCount)
class RequestCountAdmin(ReadOnlyAdmin):
    list_display = ["key", "count", "expires_at"]
    search_fields = ["key"]
    ordering = ["-expires_at"]
