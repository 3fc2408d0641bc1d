"""Users, teams, memberships, invitations and API tokens in the Django admin (/admin/)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mlmanager.accounts import services
from mlmanager.accounts.models import ApiToken, Invitation, Membership, Team, User
from mlmanager.core.admin import TIMESTAMPS


class UserAdminCreationForm(UserCreationForm):
    # Django's forms name `username`; users here sign in with their e-mail address.
    class Meta:
        model = User
        fields = ("email",)


class UserAdminChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "team"]
    readonly_fields = TIMESTAMPS


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    list_display = [
        "email",
        "first_name",
        "last_name",
        "current_team",
        "is_active",
        "is_staff",
        "last_login",
        "date_joined",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["email"]
    list_select_related = ["current_team"]
    autocomplete_fields = ["current_team"]
    readonly_fields = ["last_login", "date_joined"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "current_team")}),
        (_("Preferences"), {"fields": User.PREFERENCE_FIELDS}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "member_count", "created_at"]
    search_fields = ["name"]
    readonly_fields = TIMESTAMPS
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, team: Team) -> int:
        return team.member_count  # type: ignore[attr-defined]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "team__name"]
    list_select_related = ["user", "team"]
    autocomplete_fields = ["user", "team"]
    readonly_fields = TIMESTAMPS


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made on the team page (services.invitation_create makes the token and
    sends the e-mail); here staff find and revoke them."""

    list_display = [
        "team",
        "role",
        "email",
        "use_count",
        "max_uses",
        "expires_at",
        "revoked_at",
        "created_by",
        "created_at",
    ]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "team__name", "created_by__email"]
    list_select_related = ["team", "created_by"]
    autocomplete_fields = ["team"]
    readonly_fields = ["token", "use_count", "created_by", "revoked_at", *TIMESTAMPS]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Revoke the selected invitations"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        count = 0
        for invitation in queryset.filter(revoked_at__isnull=True):
            services.invitation_revoke(caller=request.caller, invitation=invitation)  # type: ignore[attr-defined]
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d invitation revoked.", "%(count)d invitations revoked.", count)
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only a token's hash is stored, and its raw value is shown once to its owner when made
    (API tokens page): staff can see who holds which token and revoke it, nothing more."""

    list_display = [
        "name",
        "user",
        "team",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("team", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__email", "team__name"]
    list_select_related = ["user", "team"]
    readonly_fields = [
        "user",
        "team",
        "prefix",
        "token_hash",
        "expires_at",
        "last_used_at",
        "revoked_at",
        *TIMESTAMPS,
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("team"):
            services.api_token_revoke(caller=request.caller, token=token)  # type: ignore[attr-defined]
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
            % {"count": count},
            messages.SUCCESS,
        )
