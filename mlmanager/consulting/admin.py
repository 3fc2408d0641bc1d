from django.contrib import admin

from mlmanager.consulting.models import Consultant, ConsultingRequest


@admin.register(Consultant)
class ConsultantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Mark a staff user as a consultant (or no longer one: untick `is_active`)."""

    list_display = ["user", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(ConsultingRequest)
class ConsultingRequestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: a request moves only through its steps (the services hold the money)."""

    list_display = ["id", "team", "category", "state", "consultant", "amount", "created_at"]
    list_filter = ["state", "category"]
    search_fields = ["description", "team__name"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
