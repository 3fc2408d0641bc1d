"""Who may do what with charts, dashboards, rules, alerts and reports.

An object filed under a site (its `site` is set: a chart of a mill's sensors, the alert of a
rule on them) follows the site's roles (sites.access); an object of no site (a chart of a
model's signals) follows the team's roles. So an operator who acknowledges alerts on their
mill can acknowledge them here, and a person without a role on a site sees none of its charts.
"""

from __future__ import annotations

from enum import StrEnum

from mlmanager.core.access import ROLE_ACTIONS, Action
from mlmanager.sites.access import SiteAction, effective_site_role, site_role_allows


class MonitorAction(StrEnum):
    VIEW = "view"  # see charts, dashboards, rules, alerts, reports
    OPERATE = "operate"  # acknowledge, assign, comment, mute, resolve alerts; mute rules
    CHANGE = "change"  # create and edit charts, dashboards, rules, reports
    MANAGE = "manage"  # webhooks (they hold secrets)


TEAM_ACTION = {
    MonitorAction.VIEW: Action.VIEW,
    MonitorAction.OPERATE: Action.CHANGE,
    MonitorAction.CHANGE: Action.CHANGE,
    MonitorAction.MANAGE: Action.MANAGE,
}
SITE_ACTION = {
    MonitorAction.VIEW: SiteAction.VIEW,
    MonitorAction.OPERATE: SiteAction.OPERATE,
    MonitorAction.CHANGE: SiteAction.MAINTAIN,
    MonitorAction.MANAGE: SiteAction.MANAGE,
}


def monitor_allows(
    *, team_role: str | None, site_role: str | None, has_site: bool, action: MonitorAction
) -> bool | None:
    """True/False when the caller may/may not do `action`; None when they may not even see
    the object (it is "not found" for them)."""
    if team_role is None:
        return None
    if not has_site:
        return TEAM_ACTION[action] in ROLE_ACTIONS[team_role]
    role = effective_site_role(team_role=team_role, site_role=site_role)
    if role is None:
        return None
    return site_role_allows(role, SITE_ACTION[action])
