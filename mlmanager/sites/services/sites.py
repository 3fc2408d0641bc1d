"""Sites, their members, device keys, production records and commands."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.access import require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership, Team
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.monitoring.services.alerts import alert_raise
from mlmanager.sites import mqtt
from mlmanager.sites.access import TEAM_ROLES_OVER_EVERY_SITE
from mlmanager.sites.live import site_changed
from mlmanager.sites.models import DeviceKey, ProductionRecord, Site, SiteCommand, SiteMembership

DEVICE_KEY_PREFIX = "mlmd_"
SITE_FIELDS = (
    "name",
    "location",
    "latitude",
    "longitude",
    "capacity",
    "capacity_unit",
    "status",
    "description",
)


def hash_device_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _clean_and_save(obj: Any, *, unique_message: str) -> None:
    """full_clean, then save; a unique constraint lost to a concurrent request is the same
    clear error as the one full_clean gives."""
    obj.full_clean()
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise Conflict(unique_message, code="already_exists") from None


@transaction.atomic
def site_create(*, caller: Caller, team: Team, **fields: Any) -> Site:
    """A new site of the team. Team editors may create one and become its admin (owners and
    admins are admins of every site already)."""
    role = require_team_action(caller=caller, team_id=team.pk, action=Action.CHANGE)
    site = Site(team=team, **{name: value for name, value in fields.items() if name in SITE_FIELDS})
    _clean_and_save(site, unique_message=_("This team already has a site with that name."))
    if role not in TEAM_ROLES_OVER_EVERY_SITE and caller.user is not None:
        SiteMembership.objects.create(site=site, user=caller.user, role=SiteMembership.Role.ADMIN)
    audit_record(
        caller=caller,
        team=team,
        action=AuditAction.SITE_CREATED,
        target=site,
        details={"name": site.name},
    )
    return site


@transaction.atomic
def site_update(*, caller: Caller, site: Site, **fields: Any) -> Site:
    """Change a site's fields (found with `access_site(action=MANAGE)`)."""
    changes = {}
    for name, value in fields.items():
        if name in SITE_FIELDS and getattr(site, name) != value:
            changes[name] = (getattr(site, name), value)
            setattr(site, name, value)
    if not changes:
        return site
    _clean_and_save(site, unique_message=_("This team already has a site with that name."))
    audit_record(
        caller=caller, team=site.team, action=AuditAction.SITE_CHANGED, target=site, changes=changes
    )
    site_changed(site_ids={site.pk})
    return site


@transaction.atomic
def site_delete(*, caller: Caller, site: Site) -> None:
    """Delete a site with its sensors, readings and alerts."""
    from mlmanager.sites.services.sensors import delete_readings_of

    delete_readings_of(sensor_ids=list(site.sensors.values_list("pk", flat=True)))
    audit_record(
        caller=caller,
        team=site.team,
        action=AuditAction.SITE_DELETED,
        target=site,
        details={"name": site.name},
    )
    site.delete()


@transaction.atomic
def site_member_set(*, caller: Caller, site: Site, user_id: int, role: str) -> SiteMembership:
    """Give a member of the site's team a role on the site (or change it)."""
    if role not in SiteMembership.Role.values:
        raise ApplicationError(
            _("The role must be one of admin, operator, technician, viewer."), code="invalid_role"
        )
    if not Membership.objects.filter(team_id=site.team_id, user_id=user_id).exists():
        raise ApplicationError(
            _("Only members of the site's team can have a role on it."), code="not_a_team_member"
        )
    membership, created = SiteMembership.objects.get_or_create(
        site=site, user_id=user_id, defaults={"role": role}
    )
    before = None if created else membership.role
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    if created or before != role:
        audit_record(
            caller=caller,
            team=site.team,
            action=AuditAction.SITE_MEMBER_SET,
            target=site,
            changes={"role": (before, role)},
            details={"user_id": user_id, "site": site.name},
        )
    return membership


@transaction.atomic
def site_member_remove(*, caller: Caller, site: Site, user_id: int) -> None:
    removed, _count = SiteMembership.objects.filter(site=site, user_id=user_id).delete()
    if removed:
        audit_record(
            caller=caller,
            team=site.team,
            action=AuditAction.SITE_MEMBER_REMOVED,
            target=site,
            details={"user_id": user_id, "site": site.name},
        )


def on_membership_removed(sender: Any, *, user_id: int, team_id: int, **kwargs: Any) -> None:
    """The receiver of accounts' `membership_removed` (sent after the removal committed)."""
    SiteMembership.objects.filter(site__team_id=team_id, user_id=user_id).delete()


@transaction.atomic
def device_key_create(*, caller: Caller, site: Site, name: str) -> tuple[DeviceKey, str]:
    """A new key for the site's devices; the raw key is returned once and never stored."""
    raw = DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)
    key = DeviceKey(
        team_id=site.team_id,
        site=site,
        name=(name or "").strip()[:100] or _("Device key"),
        prefix=raw[:12],
        key_hash=hash_device_key(raw),
        created_by=caller.user,
    )
    key.full_clean()
    key.save()
    audit_record(
        caller=caller,
        team=site.team,
        action=AuditAction.DEVICE_KEY_CREATED,
        target=key,
        details={"name": key.name, "site": site.name},
    )
    return key, raw


@transaction.atomic
def device_key_revoke(*, caller: Caller, key: DeviceKey) -> DeviceKey:
    revoked = DeviceKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    key.refresh_from_db()
    if revoked:
        audit_record(
            caller=caller,
            team=key.site.team,
            action=AuditAction.DEVICE_KEY_REVOKED,
            target=key,
            details={"name": key.name, "site": key.site.name},
        )
    return key


def device_key_touch(*, key_id: int) -> None:
    DeviceKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


@transaction.atomic
def production_record(*, caller: Caller, site: Site, on: date, actual: float) -> ProductionRecord:
    """Record (or correct) what the site produced on a day."""
    record, _created = ProductionRecord.objects.update_or_create(
        site=site, date=on, defaults={"actual": actual, "recorded_by": caller.user}
    )
    record.full_clean()
    site_changed(site_ids={site.pk})
    return record


@transaction.atomic
def site_start_production(*, caller: Caller, site: Site) -> Site:
    """Start production; only an active site can (409 otherwise)."""
    started = Site.objects.filter(pk=site.pk, status=Site.Status.ACTIVE).update(producing=True)
    site.refresh_from_db()
    if not started:
        raise Conflict(
            _("Production can only start on an active site; this one is %(status)s.")
            % {"status": site.get_status_display()},
            code="site_not_active",
        )
    audit_record(
        caller=caller, team=site.team, action=AuditAction.SITE_PRODUCTION_STARTED, target=site
    )
    site_changed(site_ids={site.pk})
    return site


@transaction.atomic
def site_emergency_stop(*, caller: Caller, site: Site, reason: str = "") -> SiteCommand:
    """Take the site offline, raise an emergency alert and send a stop command to its
    equipment over MQTT (after commit; the command row records whether the broker took it)."""
    Site.objects.filter(pk=site.pk).update(status=Site.Status.OFFLINE, producing=False)
    site.refresh_from_db()
    who = caller.user.email if caller.user is not None else _("the platform")
    alert_raise(
        site_id=site.pk,
        team_id=site.team_id,
        severity="emergency",
        title=_("Emergency stop of %(site)s") % {"site": site.name},
        message=_("Stopped by %(who)s. %(reason)s") % {"who": who, "reason": reason},
        caller=caller,  # audited (alert.raised), with the stop itself below
    )
    payload = {
        "command": "emergency_stop",
        "site": site.pk,
        "reason": reason,
        "issued_at": timezone.now().isoformat(),
    }
    command = SiteCommand.objects.create(
        site=site,
        command="emergency_stop",
        payload=payload,
        topic=mqtt.command_topic(site.pk),
        sent_by=caller.user,
    )
    audit_record(
        caller=caller,
        team=site.team,
        action=AuditAction.SITE_EMERGENCY_STOPPED,
        target=site,
        details={"reason": reason, "command": command.pk},
    )
    transaction.on_commit(lambda: command_publish(command_id=command.pk))
    return command


def command_publish(*, command_id: int) -> SiteCommand:
    """Send a recorded command to the broker and record the outcome."""
    command = SiteCommand.objects.get(pk=command_id)
    error = mqtt.publish_command(site_id=command.site_id, payload=command.payload)
    if error is None:
        SiteCommand.objects.filter(pk=command_id).update(published_at=timezone.now(), error="")
    else:
        SiteCommand.objects.filter(pk=command_id).update(error=error[:500])
    command.refresh_from_db()
    return command
