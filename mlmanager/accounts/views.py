"""Pages: sign-up, profile, teams, members, invitations, API tokens."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from mlmanager.accounts import selectors, services
from mlmanager.accounts.access import team_role
from mlmanager.accounts.forms import (
    ApiTokenForm,
    InvitationForm,
    ProfileForm,
    RoleForm,
    SignupForm,
    TeamForm,
)
from mlmanager.accounts.models import Membership
from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.core.errors import ApplicationError


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("datasets:list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        next_url = request.GET.get("next", "")
        try:
            services.user_signup(
                **form.cleaned_data, next_url=next_url if _is_local(next_url) else ""
            )
        except ApplicationError as error:
            for field, problems in error.details.items():
                for problem in problems if isinstance(problems, list) else [problems]:
                    form.add_error(field if field in form.fields else None, problem)
            if not error.details:
                form.add_error(None, error.message)
        else:
            # The same next page whether or not the address has an account: the e-mail says.
            return redirect("accounts:signup_done")
    return render(
        request,
        "accounts/signup.html",
        {"form": form, "signup_open": settings.MLMANAGER_SIGNUP_OPEN},
    )


def account_activate(
    request: HttpRequest, uidb64: str, token: str, *, choose_password: bool = False
) -> HttpResponse:
    """The link of an activation e-mail. Opening it changes nothing (mail scanners open links);
    the button (POST) activates, and with `choose_password` sets the password first."""
    user = selectors.user_by_activation_token(uidb64=uidb64, token=token)
    if user is None:
        return render(request, "accounts/activate.html", {"valid_link": False})
    data = request.POST if request.method == "POST" else None
    form = SetPasswordForm(user, data) if choose_password else forms.Form(data)
    if form.is_valid():
        password = form.cleaned_data["new_password1"] if choose_password else None
        user = services.user_activate(user=user, password=password)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Your account is active. Welcome to MLManager."))
        next_url = request.GET.get("next", "")
        return redirect(next_url if _is_local(next_url) else "datasets:list")
    return render(request, "accounts/activate.html", {"form": form, "valid_link": True})


@login_required
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, _("Your preferences are saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def team_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(caller=request.caller, name=form.cleaned_data["name"])
        messages.success(request, _("Team %(name)s created.") % {"name": team.name})
        return redirect("accounts:team", team_id=team.pk)
    return render(request, "accounts/team_create.html", {"form": form})


@login_required
@require_POST
def team_switch(request: AuthenticatedHttpRequest) -> HttpResponse:
    services.team_switch(caller=request.caller, team_id=request.POST.get("team"))
    next_url = request.POST.get("next", "")
    # Pages of the old team's objects would 404 in the new team: go to the list of that kind.
    target = next_url if _is_local(next_url) and next_url.count("/") <= 2 else "/"
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _is_local(url: str | None) -> bool:
    return url is not None and url.startswith("/") and not url.startswith("//")


@login_required
def team_detail(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    caller = request.caller
    team = selectors.access_team(caller=caller, id=team_id)
    role = team_role(caller=caller, team_id=team.pk)
    can_manage = role in ("owner", "admin")
    rename_form = TeamForm(initial={"name": team.name})
    invitation_form = InvitationForm()
    if request.method == "POST" and can_manage:
        if "rename" in request.POST:
            rename_form = TeamForm(request.POST)
            if rename_form.is_valid():
                services.team_rename(
                    caller=caller, team_id=team.pk, name=rename_form.cleaned_data["name"]
                )
                messages.success(request, _("Team renamed."))
                return redirect("accounts:team", team_id=team.pk)
        else:
            invitation_form = InvitationForm(request.POST)
            if invitation_form.is_valid():
                invitation = services.invitation_create(
                    caller=caller,
                    team_id=team.pk,
                    **invitation_form.cleaned_data,
                )
                messages.success(
                    request,
                    _("Invitation link created: %(url)s")
                    % {"url": services.invitation_url(invitation)},
                )
                return redirect("accounts:team", team_id=team.pk)
    invitations = list(selectors.team_invitations(team=team)) if can_manage else []
    return render(
        request,
        "accounts/team_detail.html",
        {
            "team": team,
            "role": role,
            "team_can_manage": can_manage,
            "members": selectors.team_members(team=team),
            "invitations": [(inv, services.invitation_url(inv)) for inv in invitations],
            "rename_form": rename_form,
            "invitation_form": invitation_form,
            "role_choices": Membership.Role.choices,
        },
    )


@login_required
@require_POST
def membership_update(request: AuthenticatedHttpRequest, membership_id: int) -> HttpResponse:
    membership = selectors.access_membership(caller=request.caller, id=membership_id)
    if "remove" in request.POST:
        services.membership_remove(caller=request.caller, membership=membership)
        messages.success(request, _("%(email)s was removed.") % {"email": membership.user.email})
    else:
        form = RoleForm(request.POST)
        if not form.is_valid():
            raise ApplicationError(_("Unknown role."))
        services.membership_change_role(
            caller=request.caller,
            membership=membership,
            role=form.cleaned_data["role"],
        )
        messages.success(request, _("Role changed."))
    return redirect("accounts:team", team_id=membership.team_id)


@login_required
@require_POST
def team_leave(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    services.team_leave(caller=request.caller, team_id=team_id)
    messages.success(request, _("You left the team."))
    return redirect("datasets:list")


@login_required
@require_POST
def invitation_revoke(request: AuthenticatedHttpRequest, invitation_id: int) -> HttpResponse:
    invitation = selectors.access_invitation(caller=request.caller, id=invitation_id)
    services.invitation_revoke(caller=request.caller, invitation=invitation)
    messages.success(request, _("Invitation revoked."))
    return redirect("accounts:team", team_id=invitation.team_id)


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_by_token(token=token)
    if request.method == "POST" and request.user.is_authenticated:
        caller = request.caller  # type: ignore[attr-defined] # accounts.middleware
        membership = services.invitation_accept(caller=caller, token=token)
        messages.success(request, _("Welcome to %(team)s.") % {"team": membership.team.name})
        return redirect("datasets:list")
    return render(request, "accounts/invitation_accept.html", {"invitation": invitation})


@login_required
def api_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    teams = selectors.teams_for_caller(caller=request.caller)
    form = ApiTokenForm(request.POST or None, teams=teams)
    created_raw = None
    if request.method == "POST" and form.is_valid():
        team_id = form.cleaned_data["team"]
        team = selectors.access_team(caller=request.caller, id=team_id) if team_id else None
        _token, created_raw = services.api_token_create(
            caller=request.caller,
            name=form.cleaned_data["name"],
            team=team,
            expires_at=form.cleaned_data["expires_at"],
        )
        form = ApiTokenForm(teams=teams)
    return render(
        request,
        "accounts/api_tokens.html",
        {"form": form, "tokens": selectors.user_api_tokens(user=user), "created_raw": created_raw},
    )


@login_required
@require_POST
def api_token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    token = selectors.access_api_token(caller=request.caller, id=token_id)
    services.api_token_revoke(caller=request.caller, token=token)
    messages.success(request, _("Token revoked."))
    return redirect("accounts:api_tokens")
