"""Who sees which site, and what each site role may do (the service-level half of the
matrix; the API, pages and sockets test theirs)."""

from __future__ import annotations

from typing import Any

import pytest

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import NotFound, PermissionDenied
from mlmanager.core.tests.factories import member
from mlmanager.monitoring.access import MonitorAction
from mlmanager.monitoring.models import Alert
from mlmanager.monitoring.selectors import access_alert
from mlmanager.sites.access import SiteAction, effective_site_role
from mlmanager.sites.selectors import access_sensor, access_site, sites_for_caller
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

EXPECTED = {
    "admin": set(SiteAction),
    "operator": {SiteAction.VIEW, SiteAction.INGEST, SiteAction.OPERATE},
    "technician": {SiteAction.VIEW, SiteAction.INGEST, SiteAction.MAINTAIN},
    "viewer": {SiteAction.VIEW},
}


@pytest.mark.parametrize("site_role_name", ["admin", "operator", "technician", "viewer"])
@pytest.mark.parametrize("action", list(SiteAction))
def test_site_role_matrix(db: None, site_role_name: str, action: SiteAction) -> None:
    owner = member("owner")
    team = owner.memberships.get().team
    site = site_of(team)
    sensor = sensor_of(site)
    alert = Alert.objects.create(team=team, site=site, sensor=sensor, severity="info", title="t")
    editor = member("editor", team=team)
    site_role(site, editor, site_role_name)
    caller = caller_of(editor)
    for fetch, obj in ((access_site, site), (access_sensor, sensor)):
        if action in EXPECTED[site_role_name]:
            assert fetch(caller=caller, id=obj.pk, action=action).pk == obj.pk
        else:
            with pytest.raises(PermissionDenied):
                fetch(caller=caller, id=obj.pk, action=action)
    # A site's alert (monitoring's) follows the site's roles: seen with VIEW, acted on with
    # OPERATE.
    alert_action = {SiteAction.VIEW: MonitorAction.VIEW, SiteAction.OPERATE: MonitorAction.OPERATE}
    if action in alert_action:
        if action in EXPECTED[site_role_name]:
            assert access_alert(caller=caller, id=alert.pk, action=alert_action[action]) == alert
        else:
            with pytest.raises(PermissionDenied):
                access_alert(caller=caller, id=alert.pk, action=alert_action[action])


def test_team_owners_and_admins_see_every_site_members_only_theirs(db: None) -> None:
    owner = member("owner")
    team = owner.memberships.get().team
    first, second = site_of(team, "A"), site_of(team, "B")
    admin = member("admin", team=team)
    editor = member("editor", team=team)
    viewer = member("viewer", team=team)
    site_role(second, viewer, "operator")
    assert set(sites_for_caller(caller_of(owner))) == {first, second}
    assert set(sites_for_caller(caller_of(admin))) == {first, second}
    assert list(sites_for_caller(caller_of(editor))) == []
    assert list(sites_for_caller(caller_of(viewer))) == [second]
    with pytest.raises(NotFound):  # a site without a role is not found, not forbidden
        access_site(caller=caller_of(editor), id=first.pk)
    managed = access_site(caller=caller_of(admin), id=first.pk, action=SiteAction.MANAGE)
    assert managed.caller_role == "admin"  # type: ignore[attr-defined]


def test_other_teams_and_other_credentials_find_nothing(db: None) -> None:
    owner = member("owner")
    site = site_of(owner.memberships.get().team)
    stranger = member("owner")
    for caller in (caller_of(stranger), Caller.anonymous(), Caller.system()):
        assert list(sites_for_caller(caller)) == []
        with pytest.raises(NotFound):
            access_site(caller=caller, id=site.pk)
    limited = Caller(user=owner, credential=Caller.for_session(owner).credential, team_limit=-1)
    with pytest.raises(NotFound):
        access_site(caller=limited, id=site.pk)


def test_effective_role() -> None:
    assert effective_site_role(team_role="owner", site_role=None) == "admin"
    assert effective_site_role(team_role="admin", site_role="viewer") == "admin"
    assert effective_site_role(team_role="editor", site_role="viewer") == "viewer"
    assert effective_site_role(team_role="viewer", site_role=None) is None
    assert effective_site_role(team_role=None, site_role="admin") is None


def test_leaving_the_team_ends_the_site_roles(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    from mlmanager.accounts.services import membership_remove
    from mlmanager.sites.models import SiteMembership

    owner = member("owner")
    team = owner.memberships.get().team
    site = site_of(team)
    editor = member("editor", team=team)
    site_role(site, editor, "operator")
    with django_capture_on_commit_callbacks(execute=True):
        membership_remove(caller=caller_of(owner), membership=editor.memberships.get(team=team))
    assert not SiteMembership.objects.filter(user=editor).exists()
