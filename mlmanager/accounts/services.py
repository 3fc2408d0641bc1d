"""State changes for users, teams, memberships, invitations and API tokens."""

from __future__ import annotations

import logging
import secrets
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlencode, urlsafe_base64_encode
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import ApiToken, Invitation, Membership, Team, User, hash_token
from mlmanager.accounts.selectors import access_team
from mlmanager.accounts.signals import membership_removed
from mlmanager.accounts.tokens import TOKEN_LAST_USED_RESOLUTION, account_activation_token
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "mlm_"  # noqa: S105 - a recognisable prefix, not a secret


# last_used_at is informative; writing it on every request would turn every read into a write.
def _acting_user(caller: Caller) -> User:
    """The user a rights-checked action is recorded for (an access check already passed, so a
    caller without one is a programming error, not a client's)."""
    if caller.user is None:  # pragma: no cover - access checks refuse anonymous callers first
        raise PermissionDenied()
    return caller.user


def _validation_error(error: ValidationError) -> ApplicationError:
    details = error.message_dict if hasattr(error, "error_dict") else {"errors": error.messages}
    return ApplicationError(error.messages[0], code="invalid", details=details)


def _split_name(name: str) -> tuple[str, str]:
    first, _sep, last = name.strip().partition(" ")
    return first[:150], last.strip()[:150]


@transaction.atomic
def user_signup(*, email: str, password: str, name: str = "", next_url: str = "") -> None:
    """Sign up without telling whether the address already has an account: the caller gets the
    same answer either way, and the mailbox of the address learns the rest.

    A new address gets an inactive account, its first team (owner) and an activation link. An
    active account's address gets a note that someone tried to sign up with it, with links to sign
    in and to reset the password. An account still waiting for activation gets a link to choose a
    password and activate it, so the address belongs to whoever reads its mail, not to whoever
    signed up with it first. Returns nothing, so no interface can leak which case it was."""
    if not settings.MLMANAGER_SIGNUP_OPEN:
        raise PermissionDenied(_("Sign-up is closed on this server."), code="signup_closed")
    email = User.objects.normalize_email(email or "").strip().lower()
    first_name, last_name = _split_name(name)
    user = User(email=email, first_name=first_name, last_name=last_name, is_active=False)
    try:
        validate_password(password, user)
        # Uniqueness is checked below, out of sight: its answer is what must not show.
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as error:
        raise _validation_error(error) from None
    # Hashing is most of the work of a sign-up; doing it for an address that has an account too
    # keeps the answer's timing from telling the two apart.
    user.set_password(password)
    existing = User.objects.filter(email=email).first()
    if existing is None:
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same address signed up concurrently
            existing = User.objects.get(email=email)
    if existing is None:
        team_name = _("%(name)s's team") % {"name": first_name or email.split("@")[0]}
        # Nobody is signed in yet: the platform makes the team for the new account.
        team = _team_create_for(caller=Caller.acting_for(user), name=team_name)
        logger.info("user %s signed up with team %s, awaiting activation", user.pk, team.pk)
        transaction.on_commit(lambda: _send_activation_email(user, next_url=next_url))
    elif existing.is_awaiting_activation:
        logger.info("sign-up attempt for user %s, still awaiting activation", existing.pk)
        transaction.on_commit(lambda: _send_signup_pending_email(existing, next_url=next_url))
    else:
        logger.info("sign-up attempt for existing user %s", existing.pk)
        transaction.on_commit(lambda: _send_signup_existing_email(existing))


def activation_url(user: User, *, choose_password: bool = False, next_url: str = "") -> str:
    """The link, for the account's mailbox only, that activates the account (and, with
    `choose_password`, sets its password first)."""
    name = "accounts:activate_choose_password" if choose_password else "accounts:activate"
    path = reverse(
        name,
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": account_activation_token.make_token(user),
        },
    )
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    return f"{settings.MLMANAGER_SITE_URL}{path}{query}"


def _send_account_email(user: User, template: str, context: dict[str, Any]) -> None:
    context = {
        "email": user.email,
        "valid_days": settings.PASSWORD_RESET_TIMEOUT // (24 * 3600),
        **context,
    }
    subject = render_to_string(f"accounts/email/{template}_subject.txt", context)
    try:
        send_mail(
            subject=" ".join(subject.split()),
            message=render_to_string(f"accounts/email/{template}.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    except (OSError, smtplib.SMTPException):
        # Sent after the commit: the sign-up stands, and its answer must stay the one every
        # sign-up gets. Signing up again sends a new link.
        logger.exception("the %s e-mail to user %s was not sent", template, user.pk)


def _send_activation_email(user: User, *, next_url: str) -> None:
    _send_account_email(
        user, "activation", {"activate_url": activation_url(user, next_url=next_url)}
    )


def _send_signup_pending_email(user: User, *, next_url: str) -> None:
    url = activation_url(user, choose_password=True, next_url=next_url)
    created = user.date_joined.date().isoformat()
    _send_account_email(user, "signup_pending", {"activate_url": url, "created": created})


def _send_signup_existing_email(user: User) -> None:
    site = settings.MLMANAGER_SITE_URL
    _send_account_email(
        user,
        "signup_existing",
        {
            "login_url": f"{site}{reverse('accounts:login')}",
            "password_reset_url": f"{site}{reverse('accounts:password_reset')}",
        },
    )


@transaction.atomic
def user_activate(*, user: User, password: str | None = None) -> User:
    """Activate an account whose mailbox followed its activation link; with `password` (already
    validated by the form), that becomes its password."""
    changed = ["is_active"]
    if password is not None:
        user.set_password(password)
        changed.append("password")
    user.is_active = True
    user.save(update_fields=changed)
    logger.info("user %s activated", user.pk)
    return user


@transaction.atomic
def team_create(*, caller: Caller, name: str) -> Team:
    """A new team; its creator becomes owner and switches to it. A caller whose API token is
    limited to one team may not: the token would not reach the team it made."""
    if caller.team_limit is not None:
        raise PermissionDenied(
            _("A token limited to one team cannot create teams."), code="team_scoped_token"
        )
    return _team_create_for(caller=caller, name=name)


def _team_create_for(*, caller: Caller, name: str) -> Team:
    """The caller's new team, they its owner (also their sign-up's first one, the admin's): no
    credential to check. Runs inside the caller's transaction (the audit record needs one)."""
    user = _acting_user(caller)
    team = Team(name=(name or "").strip())
    try:
        team.full_clean()
    except ValidationError as error:
        raise _validation_error(error) from None
    team.save()
    Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    User.objects.filter(pk=user.pk).update(current_team=team)
    user.current_team = team
    audit_record(caller=caller, team=team, action=AuditAction.TEAM_CREATED, target=team)
    return team


def team_switch(*, caller: Caller, team_id: Any) -> Team:
    team = access_team(caller=caller, id=team_id)
    user = _acting_user(caller)
    user.current_team = team
    user.save(update_fields=["current_team"])
    return team


@transaction.atomic
def team_rename(*, caller: Caller, team_id: Any, name: str) -> Team:
    team = access_team(caller=caller, id=team_id, action=Action.MANAGE)
    before = team.name
    team.name = (name or "").strip()
    try:
        team.full_clean()
    except ValidationError as error:
        raise _validation_error(error) from None
    team.save(update_fields=["name", "updated_at"])
    if team.name != before:  # saving the same name changes nothing worth a record
        audit_record(
            caller=caller,
            team=team,
            action=AuditAction.TEAM_RENAMED,
            target=team,
            changes={"name": (before, team.name)},
        )
    return team


def _other_owner_exists(membership: Membership) -> bool:
    return (
        Membership.objects.filter(team_id=membership.team_id, role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_change_role(*, caller: Caller, membership: Membership, role: str) -> Membership:
    """Owners and admins manage members; only owners grant or remove ownership, and a team always
    keeps at least one owner."""
    if role not in Membership.Role.values:
        raise ApplicationError(_("Unknown role."), code="invalid_role")
    actor = _acting_user(caller)
    actor_role = Membership.objects.get(team_id=membership.team_id, user=actor).role
    touches_ownership = Membership.Role.OWNER in (role, membership.role)
    if touches_ownership and actor_role != Membership.Role.OWNER:
        raise PermissionDenied(_("Only an owner can grant or remove ownership."))
    demotes_owner = membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER
    if demotes_owner and not _other_owner_exists(membership):
        raise Conflict(_("A team needs at least one owner."), code="last_owner")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    if role != before:
        audit_record(
            caller=caller,
            team=membership.team,
            action=AuditAction.MEMBERSHIP_ROLE_CHANGED,
            target=membership,
            changes={"role": (before, role)},
            details={"user": membership.user.email},
        )
    return membership


@transaction.atomic
def membership_remove(*, caller: Caller, membership: Membership) -> None:
    """Remove someone from a team (or yourself: leaving, recorded the same way, the actor being
    the member). The last owner cannot go."""
    actor = _acting_user(caller)
    if membership.user_id != actor.pk:
        actor_role = Membership.objects.get(team_id=membership.team_id, user=actor).role
        if membership.role == Membership.Role.OWNER and actor_role != Membership.Role.OWNER:
            raise PermissionDenied(_("Only an owner can remove an owner."))
    if membership.role == Membership.Role.OWNER and not _other_owner_exists(membership):
        raise Conflict(
            _("The last owner cannot leave; make someone else owner first."), code="last_owner"
        )
    user = membership.user
    # Recorded before the delete, which empties the membership's pk (the record's target id).
    audit_record(
        caller=caller,
        team=membership.team,
        action=AuditAction.MEMBERSHIP_REMOVED,
        target=membership,
        details={"user": user.email, "role": membership.role},
    )
    membership.delete()
    transaction.on_commit(
        lambda: membership_removed.send(
            sender=Membership, user_id=user.pk, team_id=membership.team_id
        )
    )
    if user.current_team_id == membership.team_id:
        User.objects.filter(pk=user.pk).update(current_team=None)


def team_leave(*, caller: Caller, team_id: Any) -> None:
    team = access_team(caller=caller, id=team_id)
    user = _acting_user(caller)
    membership = Membership.objects.select_related("user").get(team=team, user=user)
    membership_remove(caller=caller, membership=membership)


def invitation_url(invitation: Invitation) -> str:
    path = reverse("accounts:invitation_accept", kwargs={"token": invitation.token})
    return f"{settings.MLMANAGER_SITE_URL}{path}"


@transaction.atomic
def invitation_create(
    *,
    caller: Caller,
    team_id: Any,
    role: str = Membership.Role.EDITOR,
    max_uses: int | None = 1,
    valid_days: int | None = None,
    email: str = "",
) -> Invitation:
    """An invitation link; with `email`, the link is also sent to that address."""
    team = access_team(caller=caller, id=team_id, action=Action.MANAGE)
    actor = _acting_user(caller)
    if role == Membership.Role.OWNER or role not in Membership.Role.values:
        raise ApplicationError(_("Invitations can give the admin, editor or viewer role."))
    if max_uses is not None and max_uses < 1:
        raise ApplicationError(_("Uses must be at least 1, or empty for unlimited."))
    days = valid_days or settings.MLMANAGER_INVITATION_DAYS
    if not 1 <= days <= 90:
        raise ApplicationError(_("An invitation can be valid for 1 to 90 days."))
    invitation = Invitation(
        team=team,
        created_by=actor,
        token=secrets.token_urlsafe(32),
        role=role,
        email=(email or "").strip().lower(),
        max_uses=max_uses,
        expires_at=timezone.now() + timedelta(days=days),
    )
    try:
        invitation.full_clean()
    except ValidationError as error:
        raise _validation_error(error) from None
    invitation.save()
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.INVITATION_CREATED,
        target=invitation,
        # Never the token: it is the invitation's only secret.
        details={
            "role": invitation.role,
            "email": invitation.email,
            "max_uses": invitation.max_uses,
            "expires_at": invitation.expires_at,
        },
    )
    if invitation.email:
        transaction.on_commit(lambda: _send_invitation_email(invitation, actor))
    return invitation


def _send_invitation_email(invitation: Invitation, actor: User) -> None:
    send_mail(
        subject=_("%(name)s invited you to %(team)s on MLManager")
        % {"name": actor.display_name, "team": invitation.team.name},
        message=_("Join the team %(team)s with this link (valid until %(date)s):\n\n%(url)s\n")
        % {
            "team": invitation.team.name,
            "date": invitation.expires_at.date().isoformat(),
            "url": invitation_url(invitation),
        },
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_revoke(*, caller: Caller, invitation: Invitation) -> Invitation:
    """Revoke an invitation (found with `access_invitation`, or by staff); revoking it again
    changes and records nothing."""
    revoked = Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    invitation.refresh_from_db()
    if revoked:
        audit_record(
            caller=caller,
            team=invitation.team,
            action=AuditAction.INVITATION_REVOKED,
            target=invitation,
        )
    return invitation


@transaction.atomic
def invitation_accept(*, caller: Caller, token: str) -> Membership:
    """Join the invitation's team. Already a member: nothing changes and no use is counted."""
    user = _acting_user(caller)
    invitation = Invitation.objects.select_related("team").filter(token=token).first()
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."))
    existing = Membership.objects.filter(team=invitation.team, user=user).first()
    if existing is not None:
        return existing
    now = timezone.now()
    # The use is counted with a conditional UPDATE so two people racing for the last use of a
    # single-use link cannot both get in.
    claimed = (
        Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True, expires_at__gt=now)
        .filter(Q(max_uses__isnull=True) | Q(use_count__lt=F("max_uses")))
        .update(use_count=F("use_count") + 1)
    )
    if not claimed:
        raise ApplicationError(
            _("This invitation has expired, been revoked or already been used."),
            code="invitation_unusable",
            status_code=410,
        )
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                team=invitation.team, user=user, role=invitation.role
            )
    except IntegrityError:
        return Membership.objects.get(team=invitation.team, user=user)
    User.objects.filter(pk=user.pk).update(current_team=invitation.team)
    user.current_team = invitation.team
    audit_record(
        caller=caller,
        team=invitation.team,
        action=AuditAction.INVITATION_ACCEPTED,
        target=invitation,
        details={"user": user.email, "role": membership.role},
    )
    return membership


def user_update_profile(*, user: User, **fields: Any) -> User:
    allowed = {*User.PROFILE_FIELDS, *User.PREFERENCE_FIELDS}
    unknown = set(fields) - allowed
    if unknown:
        raise ApplicationError(_("Unknown fields: %s") % ", ".join(sorted(unknown)))
    for name, value in fields.items():
        setattr(user, name, value)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        raise _validation_error(error) from None
    user.save(update_fields=[*fields])
    return user


def authenticate_credentials(*, request: HttpRequest, email: str, password: str) -> User:
    """The user with these credentials. Through Django's authenticate with the request, so the
    login lockout (django-axes) counts the attempt and refuses a locked-out account or address;
    its middleware then answers 429 (accounts.lockout)."""
    user = authenticate(request, username=(email or "").strip().lower(), password=password or "")
    if user is None:
        raise ApplicationError(
            _("Wrong e-mail address or password."), code="invalid_credentials", status_code=401
        )
    return user  # type: ignore[return-value]


@transaction.atomic
def api_token_create(
    *,
    caller: Caller,
    name: str,
    team: Team | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A token of the caller's user, for every team of theirs or only `team`. Returns the token
    row and the raw secret, which is never stored (nor recorded) and cannot be shown again."""
    user = _acting_user(caller)
    if team is not None and not Membership.objects.filter(team=team, user=user).exists():
        raise NotFound()
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError(_("The expiry date must be in the future."))
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        team=team,
        name=(name or "").strip() or _("API token"),
        prefix=raw[:10],
        token_hash=hash_token(raw),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_record(
        caller=caller,
        team=team,  # None for a personal token: an event of the account (admin only)
        action=AuditAction.TOKEN_CREATED,
        target=token,
        details={"name": token.name, "expires_at": token.expires_at},
    )
    return token, raw


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    found = ApiToken.objects.select_related("user").filter(
        token_hash=hash_token(raw), revoked_at__isnull=True
    )[:1]  # the hash is unique; no ORDER BY on the hot path of every API call
    token = found[0] if found else None
    if token is None or not token.is_active or not token.user.is_active:
        return None
    last_used = token.last_used_at
    if last_used is None or timezone.now() - last_used > TOKEN_LAST_USED_RESOLUTION:
        api_token_touch(token_id=token.pk)
    return token


def api_token_touch(*, token_id: int) -> None:
    """Record that the token was used now; callers do this at most once per
    TOKEN_LAST_USED_RESOLUTION, so a busy token does not write on every request."""
    ApiToken.objects.filter(pk=token_id).update(last_used_at=timezone.now())


@transaction.atomic
def api_token_revoke(*, caller: Caller, token: ApiToken) -> ApiToken:
    """Revoke a token (its owner's, found with `access_api_token`, or any, by staff); revoking it
    again changes and records nothing."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db()
    if revoked:
        audit_record(
            caller=caller,
            team=token.team,
            action=AuditAction.TOKEN_REVOKED,
            target=token,
            details={"name": token.name},
        )
    return token


@transaction.atomic
def admin_bootstrap(*, email: str, password: str) -> tuple[User, bool]:
    """Create the first superuser with a team, once. Returns (user, created)."""
    existing = User.objects.filter(email=email.lower()).first()
    if existing is not None and existing.is_awaiting_activation:
        # A sign-up nobody activated holds the configured address: the operator's password
        # replaces whatever it was signed up with, so the login `mlmanager run` prints works.
        existing.set_password(password)
        existing.is_active = existing.is_staff = existing.is_superuser = True
        existing.save(update_fields=["password", "is_active", "is_staff", "is_superuser"])
        return existing, True
    if existing is not None:
        return existing, False
    user = User.objects.create_superuser(email=email, password=password, first_name="Admin")
    _team_create_for(caller=Caller.acting_for(user), name=_("Admin's team"))
    return user, True
