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


class _Changes:
    """The sites changed in one transaction, told once when it commits: an ingest that also
    opens alerts (the monitoring app tells of those) gives each dashboard one update."""

    def __init__(self) -> None:
        self.site_ids: set[int] = set()

    def publish(self) -> None:
        _publish(sorted(self.site_ids))


def site_changed(*, site_ids: Iterable[int]) -> None:
    """Once the caller's transaction commits, tell the sites' dashboards (once per site and
    transaction, however many changes the transaction made)."""
    ids = set(site_ids)
    if not ids:
        return
    connection = transaction.get_connection()
    changes: _Changes | None = getattr(connection, "mlmanager_site_changes", None)
    # The batch of this transaction, if its callback is still waiting: a rolled-back
    # transaction drops its callbacks, and its batch with them.
    if changes is None or not any(
        entry[1] == changes.publish for entry in connection.run_on_commit
    ):
        changes = _Changes()
        connection.mlmanager_site_changes = changes  # type: ignore[attr-defined]
        transaction.on_commit(changes.publish)
    changes.site_ids |= ids


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
