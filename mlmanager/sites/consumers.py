"""The live site dashboard's socket: `ws/sites/<id>/` sends the site's state when it changes.

Opened by sites/static/sites/dashboard.js beside the page's job socket. On connect the
signed-in user must be allowed to VIEW the site (`access_site`); otherwise the handshake is
refused. Then, with a channel layer, the socket joins the site's group (`live.site_group`) and
answers each `site.changed` message; without one (the embedded default) it compares the site's
change counter (`live.site_version`) every POLL_INTERVAL_S. Either way it sends the snapshot
read now (the status endpoint's data), never what the message said, and it checks the right
again (each poll, or every RIGHT_CHECK_S with a layer): once it is gone it closes with
CLOSE_NOT_ALLOWED and the page stops reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import user_is_active
from mlmanager.core.errors import ApplicationError
from mlmanager.live.consumers import CLOSE_NOT_A_MEMBER, socket_caller
from mlmanager.live.events import user_group
from mlmanager.sites import selectors
from mlmanager.sites.access import SiteAction
from mlmanager.sites.live import site_group, site_version
from mlmanager.sites.models import Site

logger = logging.getLogger(__name__)

CLOSE_NOT_ALLOWED = CLOSE_NOT_A_MEMBER  # 4403: the page does not reconnect
POLL_INTERVAL_S = 1.0
# With a channel layer changes are pushed; the right is still read again this often.
RIGHT_CHECK_S = 30.0


def site_snapshot(site: Site) -> dict[str, Any]:
    """The site's state as `GET /api/v1/sites/{id}/status/` gives it, JSON-ready."""
    status = selectors.site_status(site=site)
    return {
        "type": "site",
        "site": site.pk,
        "status": site.status,
        "producing": site.producing,
        "latest_readings": {
            str(sensor.pk): {
                "value": sensor.last_value,
                "unit": sensor.unit,
                "timestamp": sensor.last_timestamp,
                "quality": sensor.last_quality or None,
                "state": status.states[sensor.pk],
            }
            for sensor in status.sensors
        },
        "open_alerts": len(status.open_alerts),
        "efficiency": status.efficiency,
        "last_updated": status.last_updated,
    }


def _site_if_allowed(caller: Caller, site_id: int) -> Site | None:
    try:
        return selectors.access_site(caller=caller, id=site_id, action=SiteAction.VIEW)
    except ApplicationError:
        return None


def _still_allowed(caller: Caller, site_id: int, session: Any) -> bool:
    """The user is still active, still signed in with this session, and may still VIEW the
    site (which still exists)."""
    if caller.user is None or not user_is_active(user_id=caller.user.pk):
        return False
    key = getattr(session, "session_key", None)
    if key is None or not session.exists(key):
        return False
    return _site_if_allowed(caller, site_id) is not None


def _snapshot_of(caller: Caller, site_id: int) -> dict[str, Any] | None:
    site = _site_if_allowed(caller, site_id)
    return None if site is None else site_snapshot(site)


class SiteDashboardConsumer(AsyncJsonWebsocketConsumer):
    """Sends `site_snapshot` on connect and after each change of one site."""

    site_id: int
    user_id: int
    caller: Caller
    version: int | None = None
    watcher: asyncio.Task[None] | None = None
    joined = False

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    async def connect(self) -> None:
        caller = socket_caller(self.scope)
        site_id = int(self.scope["url_route"]["kwargs"]["site_id"])
        site = None
        if caller is not None:
            site = await database_sync_to_async(_site_if_allowed)(caller, site_id)
        if caller is None or caller.user_id is None or site is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.caller = caller
        self.user_id = caller.user_id
        self.site_id = site_id
        if self.channel_layer is not None:
            await self.channel_layer.group_add(site_group(site_id), self.channel_name)
            # A team membership removed is pushed to the user's group (mlmanager.live.events).
            await self.channel_layer.group_add(user_group(self.user_id), self.channel_name)
            self.joined = True
        else:
            self.version = await database_sync_to_async(site_version)(site_id)
        await self.accept()
        await self.send_json(await database_sync_to_async(site_snapshot)(site))
        self.watcher = asyncio.create_task(self._keep_watching())

    async def disconnect(self, code: int) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        if self.joined and self.channel_layer is not None:
            await self.channel_layer.group_discard(site_group(self.site_id), self.channel_name)
            await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page sends nothing; anything it sends is ignored."""

    # --- messages from the channel layer ---

    async def site_changed(self, message: dict[str, Any]) -> None:
        if message.get("site_id") != self.site_id:  # the group is the site's; checked anyway
            return
        snapshot = await database_sync_to_async(_snapshot_of)(self.caller, self.site_id)
        if snapshot is None:
            await self._close_not_allowed()
            return
        await self.send_json(snapshot)

    async def membership_removed(self, message: dict[str, Any]) -> None:
        """One of the user's team memberships is gone: is this site still theirs?"""
        allowed = await database_sync_to_async(_still_allowed)(
            self.caller, self.site_id, self.scope.get("session")
        )
        if not allowed:
            await self._close_not_allowed()

    async def notification_event(self, message: dict[str, Any]) -> None:
        """The user's in-app notifications share their group; the page's own socket
        (ws/events/) shows them, this dashboard has nothing to do with them."""

    # --- the periodic look (both modes) ---

    async def _keep_watching(self) -> None:
        while True:
            await asyncio.sleep(RIGHT_CHECK_S if self.joined else POLL_INTERVAL_S)
            try:
                allowed = await database_sync_to_async(_still_allowed)(
                    self.caller, self.site_id, self.scope.get("session")
                )
                if not allowed:
                    await self._close_not_allowed()
                    return
                if not self.joined:
                    version = await database_sync_to_async(site_version)(self.site_id)
                    if version != self.version:
                        self.version = version
                        snapshot = await database_sync_to_async(_snapshot_of)(
                            self.caller, self.site_id
                        )
                        if snapshot is not None:
                            await self.send_json(snapshot)
            except Exception:
                # A database hiccup must not end the live feed: the next look tries again.
                logger.warning("live: looking at site %s failed", self.site_id, exc_info=True)

    async def _close_not_allowed(self) -> None:
        logger.info(
            "live: user %s may no longer view site %s; closing", self.caller.user_id, self.site_id
        )
        await self.close(code=CLOSE_NOT_ALLOWED)
