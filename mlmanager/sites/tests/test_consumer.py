"""The site dashboard's socket (`ws/sites/<id>/`): who may open it, what it sends and when it
closes, in both transports: `poll` (no channel layer, the embedded default) and `push` (an
in-memory channel layer standing in for Redis)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.accounts.services import membership_remove
from mlmanager.core.tests.factories import member
from mlmanager.live.routing import app_websocket_urlpatterns, websocket_application
from mlmanager.live.tests.communicator import WebsocketCommunicator
from mlmanager.sites import consumers, live
from mlmanager.sites.models import Site, SiteMembership
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.services.sites import site_member_remove
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5  # generous: a loaded 2-core machine; the tests wait only when something is wrong
PAGE_ORIGIN = "http://testserver:8000"
IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def _publishing_not_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(live._publishing, "paused_until", 0.0)


@pytest.fixture(params=["poll", "push"])
def mode(request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(consumers, "POLL_INTERVAL_S", 0.05)
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER if request.param == "push" else {}
    return str(request.param)


def socket(user: Any, site_id: int) -> WebsocketCommunicator:
    """A socket to the site's dashboard as the browser opens it (session cookie, Origin)."""
    headers = [(b"origin", PAGE_ORIGIN.encode())]
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(websocket_application(), f"/ws/sites/{site_id}/", headers=headers)


def _send(site_owner: Any, sensor: Any, value: float) -> None:
    answer = readings_ingest(
        caller=caller_of(site_owner),
        readings=[{"sensor": sensor.pk, "timestamp": timezone.now().isoformat(), "value": value}],
    )
    assert answer["accepted"] == 1


def _from_another_connection(write: Any) -> None:
    """Runs in a thread: its own database connection, as the ingest's web process has."""
    try:
        write()
    finally:
        connections.close_all()


def test_the_route_is_gathered_from_the_sites_app() -> None:
    routes = [str(pattern.pattern) for pattern in app_websocket_urlpatterns()]

    assert routes == ["ws/events/", "ws/sites/<int:site_id>/"]


def test_a_viewer_gets_the_snapshot_on_connect_and_after_each_change(mode: str) -> None:
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    sensor = sensor_of(site, "Kiln", warning_max=80.0)
    viewer = member(Membership.Role.VIEWER, team=owner.current_team)
    site_role(site, viewer, "viewer")
    communicator = socket(viewer, site.pk)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        first = await communicator.receive_json_from(timeout=TIMEOUT)
        assert first["type"] == "site" and first["site"] == site.pk
        assert first["latest_readings"][str(sensor.pk)]["state"] == "stale"
        assert first["latest_readings"][str(sensor.pk)]["value"] is None
        assert first["open_alerts"] == 0

        if mode == "push":
            await database_sync_to_async(_send)(owner, sensor, 85.5)
        else:  # the embedded default: the ingest ran in another process
            await asyncio.to_thread(_from_another_connection, lambda: _send(owner, sensor, 85.5))
        snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
        reading = snapshot["latest_readings"][str(sensor.pk)]
        assert (reading["value"], reading["unit"], reading["quality"], reading["state"]) == (
            85.5,
            "°C",
            "good",
            "warning",
        )
        assert snapshot["open_alerts"] == 1
        assert snapshot["last_updated"] == reading["timestamp"]
        assert await communicator.receive_nothing(timeout=0.3)  # once per change
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_changes_of_another_site_are_not_sent(mode: str) -> None:
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    other = sensor_of(site_of(owner.current_team, "Mill 2"), "Press")
    communicator = socket(owner, site.pk)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_json_from(timeout=TIMEOUT)
        await database_sync_to_async(_send)(owner, other, 1.0)
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    "who",
    [
        "anonymous",
        "team member without a site role",
        "another team's owner",
        "unknown site",
    ],
)
def test_who_may_not_open_it_is_refused(mode: str, who: str) -> None:
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    user = {
        "anonymous": None,
        "team member without a site role": member(Membership.Role.EDITOR, team=site.team),
        "another team's owner": member(),
        "unknown site": owner,
    }[who]
    communicator = socket(user, site.pk + 1000 if who == "unknown site" else site.pk)

    async def scenario() -> None:
        connected, _code = await communicator.connect(timeout=TIMEOUT)
        assert connected is False

    async_to_sync(scenario)()


@pytest.mark.parametrize("role", ["admin", "operator", "technician", "viewer"])
def test_every_site_role_may_open_it(role: str) -> None:
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    user = member(Membership.Role.VIEWER, team=site.team)
    site_role(site, user, role)
    communicator = socket(user, site.pk)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["site"] == site.pk
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("removal", ["site role", "team membership", "site deleted"])
def test_the_socket_closes_when_the_right_is_gone(
    mode: str, removal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "RIGHT_CHECK_S", 0.05)
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    user = member(Membership.Role.VIEWER, team=site.team)
    site_role(site, user, "operator")
    communicator = socket(user, site.pk)

    def remove() -> None:
        if removal == "site role":
            site_member_remove(caller=caller_of(owner), site=site, user_id=user.pk)
        elif removal == "team membership":
            membership = Membership.objects.select_related("user").get(team=site.team, user=user)
            membership_remove(caller=Caller.for_session(owner), membership=membership)
        else:
            Site.objects.filter(pk=site.pk).delete()

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_json_from(timeout=TIMEOUT)
        await database_sync_to_async(remove)()
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": consumers.CLOSE_NOT_ALLOWED}
        await communicator.disconnect(code=consumers.CLOSE_NOT_ALLOWED)

    async_to_sync(scenario)()
    if removal == "team membership":  # the site role stays, and means nothing without it
        assert not Membership.objects.filter(team=site.team, user=user).exists()
    else:
        assert not SiteMembership.objects.filter(site_id=site.pk, user=user).exists()


def test_a_reading_from_an_hour_ago_still_updates_the_dashboard(mode: str) -> None:
    """A late reading changes no latest value, but the charts: the site still changed."""
    owner = member()
    site = site_of(owner.current_team, "Mill 1")
    sensor = sensor_of(site, "Kiln")
    communicator = socket(owner, site.pk)

    def late() -> None:
        readings_ingest(
            caller=caller_of(owner),
            readings=[
                {
                    "sensor": sensor.pk,
                    "timestamp": (timezone.now() - timedelta(hours=1)).isoformat(),
                    "value": 3.0,
                }
            ],
        )

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_json_from(timeout=TIMEOUT)
        await database_sync_to_async(late)()
        snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
        assert snapshot["site"] == site.pk
        await communicator.disconnect()

    async_to_sync(scenario)()
