"""Live updates of site dashboards.

After a change to a site (new readings, an alert opened, resolved or acknowledged, production
started or stopped) commits, `site_changed` tells the sockets of that site's dashboard: with a
channel layer through the site's group; without one the sockets look at the site's change
counter (`Site.live_version`) every second. Either way the socket then sends the
site's state as the status endpoint gives it, so a page never trusts what the event said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F

logger = logging.getLogger(__name__)

PUBLISH_PAUSE_S = 30.0
_publishing = {"paused_until": 0.0}


def site_group(site_id: int) -> str:
    return f"sites.site.{site_id}"


def _version_key(site_id: int) -> str:
    return f"sites:version:{site_id}"


def site_changed(*, site_ids: Iterable[int]) -> None:
    """Once the caller's transaction commits, tell the sites' dashboards."""
    ids = sorted(set(site_ids))
    if ids:
        transaction.on_commit(lambda: _publish(ids))


def _publish(site_ids: list[int]) -> None:
    for site_id in site_ids:
        _bump_version(site_id)
    layer = get_channel_layer()
    if layer is None or time.monotonic() < _publishing["paused_until"]:
        return
    try:
        for site_id in site_ids:
            async_to_sync(layer.group_send)(
                site_group(site_id), {"type": "site.changed", "site_id": site_id}
            )
    except Exception:
        # Live updates are a convenience: an unreachable Redis must never fail an ingest.
        _publishing["paused_until"] = time.monotonic() + PUBLISH_PAUSE_S
        logger.warning("live: site changes could not be published; pausing", exc_info=True)


def _bump_version(site_id: int) -> None:
    # After commit, in a statement of its own: the row is locked for an instant, not for the
    # whole ingest transaction (concurrent ingests of one site do not queue on it).
    from mlmanager.sites.models import Site

    Site.objects.filter(pk=site_id).update(live_version=F("live_version") + 1)


def site_version(site_id: int) -> int | None:
    """The site's change counter (None once the site is gone): the embedded default's
    sockets compare it every second."""
    from mlmanager.sites.models import Site

    return Site.objects.filter(pk=site_id).values_list("live_version", flat=True).first()
