"""The page's socket: the events of the jobs of the signed-in user's current team.

The team is found as the pages find it (`current_team_for`), once, when the socket opens; a page
of another team opens its own socket. Which transport carries the events is decided by the
settings (see mlmanager/live/__init__.py): with a channel layer the socket joins its team's and
its user's groups; without one it looks at the database every POLL_INTERVAL_S. Either way it
checks the membership now and then, and closes with CLOSE_NOT_A_MEMBER once it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.selectors import current_team_for, teams_for_caller, user_is_active
from mlmanager.live.events import Event, team_group, user_group
from mlmanager.live.polling import TeamJobWatch

logger = logging.getLogger(__name__)

# Application close codes (4000-4999). A page does not reconnect after CLOSE_NOT_A_MEMBER.
CLOSE_NOT_A_MEMBER = 4403
POLL_INTERVAL_S = 1.0
# With a channel layer, removals are pushed; this check only catches a push that was lost.
MEMBERSHIP_CHECK_S = 30.0


def socket_caller(scope: dict[str, Any]) -> Caller | None:
    """The caller of a socket: its session's user (AuthMiddlewareStack), None when signed out."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    client = scope.get("client") or (None,)
    return Caller.for_session(user, address=client[0])


def _current_team_id(caller: Caller) -> int | None:
    team = current_team_for(caller=caller)
    return team.pk if team is not None else None


def _still_allowed(caller: Caller, team_id: int, session: Any) -> bool:
    """The user is still active, still signed in with this session (not logged out since),
    and still a member of the team."""
    if caller.user is None or not user_is_active(user_id=caller.user.pk):
        return False
    key = getattr(session, "session_key", None)
    if key is None or not session.exists(key):
        return False
    return teams_for_caller(caller=caller).filter(pk=team_id).exists()


class JobEventsConsumer(AsyncJsonWebsocketConsumer):
    """Sends `{"type": "job", ...}` (events.job_events) for each change of a team's job."""

    team_id: int | None = None
    watch: TeamJobWatch | None = None
    watcher: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        caller = socket_caller(self.scope)
        if caller is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        user = self.scope["user"]
        team_id = await database_sync_to_async(_current_team_id)(caller)
        if team_id is None:
            await self.close()
            return
        self.user = user
        self.caller = caller
        self.team_id = team_id
        if self.channel_layer is not None:
            await self.channel_layer.group_add(team_group(team_id), self.channel_name)
            await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        else:
            self.watch = TeamJobWatch(team_id)
            await database_sync_to_async(self.watch.start)()
        await self.accept()
        self.watcher = asyncio.create_task(self._keep_watching())

    async def disconnect(self, code: int) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        if self.channel_layer is not None and self.team_id is not None:
            await self.channel_layer.group_discard(team_group(self.team_id), self.channel_name)
            await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page sends nothing; anything it sends is ignored."""

    # --- messages from the channel layer (scale-out) ---

    async def job_event(self, message: dict[str, Any]) -> None:
        if message["team_id"] == self.team_id:  # the group is the team's; checked again anyway
            await self.send_json(message["event"])

    async def notification_event(self, message: dict[str, Any]) -> None:
        """An in-app notification of this socket's user (sent to their own group only, by
        monitoring's notifications after the commit): `{"type": "notification", ...}`."""
        await self.send_json(message["event"])

    async def membership_removed(self, message: dict[str, Any]) -> None:
        if message["team_id"] == self.team_id:
            await self._close_not_a_member()

    # --- the periodic look (both modes) ---

    async def _keep_watching(self) -> None:
        assert self.team_id is not None
        while True:
            await asyncio.sleep(POLL_INTERVAL_S if self.watch is not None else MEMBERSHIP_CHECK_S)
            try:
                allowed = await database_sync_to_async(_still_allowed)(
                    self.caller, self.team_id, self.scope.get("session")
                )
                if not allowed:
                    await self._close_not_a_member()
                    return
                if self.watch is not None:
                    events: list[Event] = await database_sync_to_async(self.watch.changes)()
                    for event in events:
                        await self.send_json(event)
            except Exception:
                # A database hiccup (a restart, a lock timeout) must not end the live feed:
                # the next look tries again.
                logger.warning("live: looking at team %s failed", self.team_id, exc_info=True)

    async def _close_not_a_member(self) -> None:
        logger.info(
            "live: user %s is signed out or no member of team %s; closing",
            self.user.pk,
            self.team_id,
        )
        await self.close(code=CLOSE_NOT_A_MEMBER)
