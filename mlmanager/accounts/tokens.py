"""Links that activate an account: they prove the mailbox of its address."""

from __future__ import annotations

from django.contrib.auth.tokens import PasswordResetTokenGenerator

from mlmanager.accounts.models import User


class AccountActivationTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset tokens with a salt of their own, so a reset link never activates
    an account and an activation link never resets a password. The hash covers `is_active` (and,
    from Django, the password and the last login), so a link works once and dies when the
    password changes; it expires after PASSWORD_RESET_TIMEOUT."""

    key_salt = "mlmanager.accounts.tokens.AccountActivationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


account_activation_token = AccountActivationTokenGenerator()
