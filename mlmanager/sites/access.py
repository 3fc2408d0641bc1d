"""Who may do what on a site: the monitoring system's four roles, granted per site.

Team owners and admins act as every site's admin; other team members reach only the sites
they hold a role on. Every client-supplied id of a site, sensor or alert is fetched here
(`selectors.access_site` and friends), in one query that also reads the caller's roles.
"""

from __future__ import annotations

from enum import StrEnum

from mlmanager.core.errors import NotFound, PermissionDenied


class SiteAction(StrEnum):
    VIEW = "view"  # see the site, its sensors, readings, alerts, production
    INGEST = "ingest"  # send readings (a person or a script with their token)
    OPERATE = "operate"  # acknowledge alerts, start and stop production, record production
    MAINTAIN = "maintain"  # calibrate sensors, edit their thresholds
    MANAGE = "manage"  # edit the site, add and remove sensors, members and device keys


SITE_ROLE_ACTIONS: dict[str, frozenset[SiteAction]] = {
    "admin": frozenset(SiteAction),
    "operator": frozenset({SiteAction.VIEW, SiteAction.INGEST, SiteAction.OPERATE}),
    "technician": frozenset({SiteAction.VIEW, SiteAction.INGEST, SiteAction.MAINTAIN}),
    "viewer": frozenset({SiteAction.VIEW}),
}

# Team roles that act as the admin of every site of their team.
TEAM_ROLES_OVER_EVERY_SITE = frozenset({"owner", "admin"})


def effective_site_role(*, team_role: str | None, site_role: str | None) -> str | None:
    """The caller's role on a site: admin for a team owner/admin, else the role granted on the
    site; None when they have none (the site is "not found" for them)."""
    if team_role is None:
        return None
    if team_role in TEAM_ROLES_OVER_EVERY_SITE:
        return "admin"
    return site_role


def site_role_allows(role: str | None, action: SiteAction) -> bool:
    return role is not None and action in SITE_ROLE_ACTIONS[role]


def require_site_action(role: str | None, action: SiteAction) -> str:
    """The role when it allows the action; no role is "not found" (ids reveal nothing)."""
    if role is None:
        raise NotFound()
    if action not in SITE_ROLE_ACTIONS[role]:
        raise PermissionDenied()
    return role
