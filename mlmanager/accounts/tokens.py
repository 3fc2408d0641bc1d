"""Tokens: links that activate an account (they prove the mailbox of its address), and what an
API token may do, checked in one query on the predict path (`token_grant`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import connection, models
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import ApiToken, Membership, User, hash_token
from mlmanager.core.access import parse_id
from mlmanager.core.errors import NotFound
from mlmanager.core.models import deferred_instance


class AccountActivationTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset tokens with a salt of their own, so a reset link never activates
    an account and an activation link never resets a password. The hash covers `is_active` (and,
    from Django, the password and the last login), so a link works once and dies when the
    password changes; it expires after PASSWORD_RESET_TIMEOUT."""

    key_salt = "mlmanager.accounts.tokens.AccountActivationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


account_activation_token = AccountActivationTokenGenerator()


# --- what an API token may do, in one query -----------------------------------------------------

# How often a token's last-used time is written: a busy token does not write on every request.
TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    """What one query found for a bearer token and one object of a team: the caller the token
    stands for, the caller's role in the object's team (None: the object is not found for this
    caller) and the object's columns that were asked for (None each when not found)."""

    caller: Caller
    user: User  # the caller's user (a token always has one)
    token_id: int
    role: str | None
    values: tuple[Any, ...]
    token_last_used_is_stale: bool


def _token_grant_sql(target: type[models.Model], columns: Sequence[str], joins: str) -> str:
    """The token (not revoked, not expired, of an active user: the rules of
    `api_token_authenticate`), and the object with the caller's role when the token's user is a
    member of the object's team and the token is not limited to another team (the rules of
    `access_team_object` with `Caller.for_api_token`). Built from the models' table and column
    names; values are always bound parameters."""
    token, user, membership = ApiToken._meta, User._meta, Membership._meta
    selected = "".join(f", {column}" for column in columns)
    return f"""
        SELECT t.id, t.user_id, t.team_id,
               CASE WHEN t.last_used_at IS NULL OR t.last_used_at < %s THEN 1 ELSE 0 END,
               ms.role{selected}
        FROM {token.db_table} t
        JOIN {user.db_table} u ON u.id = t.user_id AND u.is_active = %s
        LEFT JOIN {target._meta.db_table} o
            ON o.id = %s AND (t.team_id IS NULL OR o.team_id = t.team_id)
        LEFT JOIN {membership.db_table} ms ON ms.team_id = o.team_id AND ms.user_id = t.user_id
        {joins}
        WHERE t.token_hash = %s AND t.revoked_at IS NULL
            AND (t.expires_at IS NULL OR t.expires_at > %s)
    """  # noqa: S608 - table names from the models' metadata; every value is a parameter


def token_grant(
    *,
    raw_token: str,
    target: type[models.Model],
    target_id: Any,
    columns: Sequence[str] = (),
    joins: str = "",
    address: str | None = None,
) -> TokenGrant | None:
    """The bearer token check and the access check of one object of a team (`target`, a
    team-owned model, aliased `o`; `columns` and `joins` may read it and tables joined to it) in
    one query, or None when the token is unknown, revoked, expired or its user deactivated (401).

    Every API call of a client that predicts one row at a time pays for this lookup: as two ORM
    queries (the token with its user, then the model with the caller's role), compiling them
    took ~0.7 ms of a ~2 ms request; this SQL runs in ~0.05 ms. A test puts every case to both
    paths (mlmanager/predictions/tests/test_api.py). The user is a deferred instance: any other
    field loads on first use.
    """
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _token_grant_sql(target, columns, joins),
            [
                adapt(now - TOKEN_LAST_USED_RESOLUTION),
                True,
                _row_id_or_none(target_id),
                hash_token(raw_token),
                adapt(now),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, user_id, token_team_id, stale, role, *values = row
    user = deferred_instance(User, id=user_id, is_active=True)
    caller = Caller.for_token_values(
        user=user, token_id=token_id, team_id=token_team_id, address=address
    )
    return TokenGrant(
        caller=caller,
        user=user,
        token_id=token_id,
        role=role,
        values=tuple(values),
        token_last_used_is_stale=bool(stale),
    )


def _row_id_or_none(raw: Any) -> int | None:
    """A client-supplied id as the database can compare it; None (matches nothing, as the ORM
    answers) when it is not a positive id or past the column's range (SQLite's driver raises
    OverflowError on integers it cannot bind)."""
    try:
        value = parse_id(raw)
    except NotFound:
        return None
    _lowest, highest = connection.ops.integer_field_range("BigIntegerField")
    return value if highest is None or value <= highest else None
