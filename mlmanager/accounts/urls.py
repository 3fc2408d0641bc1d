from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from mlmanager.accounts import views
from mlmanager.core.throttling import (
    PasswordResetAddressThrottle,
    PasswordResetEmailThrottle,
    SignupAddressThrottle,
    SignupEmailThrottle,
    throttle_posts,
)

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Sign-up and password reset send mail: POSTs are limited per client address and per
    # target e-mail address (core.throttling), counted where every process sees them.
    path(
        "signup/",
        throttle_posts(views.signup, SignupAddressThrottle, SignupEmailThrottle),
        name="signup",
    ),
    path(
        "signup/sent/",
        TemplateView.as_view(
            template_name="accounts/message_page.html",
            extra_context={
                "title": _("Check your e-mail"),
                "text": _(
                    "We sent a message to the address you gave: follow its link to finish. "
                    "Nothing arrived within a few minutes? Look in the spam folder, or sign up "
                    "again."
                ),
            },
        ),
        name="signup_done",
    ),
    path("activate/<str:uidb64>/<str:token>/", views.account_activate, name="activate"),
    path(
        "activate/<str:uidb64>/<str:token>/password/",
        views.account_activate,
        {"choose_password": True},
        name="activate_choose_password",
    ),
    path("profile/", views.profile, name="profile"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/form_page.html",
            success_url=reverse_lazy("accounts:password_change_done"),
            extra_context={"title": "Change password"},
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/message_page.html",
            extra_context={"title": "Password changed", "text": "Your password was changed."},
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        throttle_posts(
            auth_views.PasswordResetView.as_view(
                template_name="accounts/form_page.html",
                email_template_name="accounts/email/password_reset.txt",
                subject_template_name="accounts/email/password_reset_subject.txt",
                success_url=reverse_lazy("accounts:password_reset_done"),
                extra_context={"title": "Reset your password"},
            ),
            PasswordResetAddressThrottle,
            PasswordResetEmailThrottle,
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="accounts/message_page.html",
            extra_context={
                "title": "Check your e-mail",
                "text": "If an account uses that address, we sent it a link to set a new password.",
            },
        ),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/form_page.html",
            success_url=reverse_lazy("accounts:password_reset_complete"),
            extra_context={"title": "Choose a new password"},
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/message_page.html",
            extra_context={"title": "Password set", "text": "You can sign in with it now."},
        ),
        name="password_reset_complete",
    ),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/switch/", views.team_switch, name="team_switch"),
    path("teams/<int:team_id>/", views.team_detail, name="team"),
    path("teams/<int:team_id>/leave/", views.team_leave, name="team_leave"),
    path("members/<int:membership_id>/", views.membership_update, name="membership_update"),
    path(
        "invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"
    ),
    path("invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
]
