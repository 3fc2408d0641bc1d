"""The socket: who may open it, which events it carries, and when it closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.accounts.services import membership_remove, team_leave
from mlmanager.core.tests.factories import MembershipFactory, UserFactory, member
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.live.consumers import CLOSE_NOT_A_MEMBER
from mlmanager.live.tests.conftest import run, socket

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5  # generous: a loaded 2-core machine; the tests wait only when something is wrong


def _job(user: Any, team: Any = None) -> Job:
    return services.job_create(
        team=team or user.current_team, created_by=user, kind="dataset.process"
    )


def test_anonymous_is_refused() -> None:
    communicator = socket(None)

    async def scenario() -> None:
        connected, _code = await communicator.connect(timeout=TIMEOUT)
        assert connected is False

    run(scenario)


def test_a_user_without_a_team_is_refused() -> None:
    communicator = socket(UserFactory())

    async def scenario() -> None:
        connected, _code = await communicator.connect(timeout=TIMEOUT)
        assert connected is False

    run(scenario)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("http://mlmanager.example.com:8000", True),  # the page, on the web server's port
        ("https://mlmanager.example.com", True),
        ("https://evil.example.net", False),
        ("https://mlmanager.example.com.evil.example.net", False),
        (None, False),  # no Origin at all
    ],
)
def test_origin_must_be_an_allowed_host(settings: Any, origin: str | None, accepted: bool) -> None:
    """Host names are compared, not ports: the page (port 8000) may open its socket (port 8001);
    a page of another site may not, even though the browser would send the session cookie."""
    settings.ALLOWED_HOSTS = ["mlmanager.example.com"]
    communicator = socket(member(), origin=origin)  # built after the override: it reads them

    async def scenario() -> None:
        connected, _code = await communicator.connect(timeout=TIMEOUT)
        assert connected is accepted
        if connected:
            await communicator.disconnect()

    run(scenario)


def test_events_of_the_current_team_only(mode: str) -> None:
    """The user belongs to two teams and works in `mine`: the socket carries the jobs of that
    team, neither those of the other team nor of a team the user is not in."""
    user = member()
    mine = user.current_team
    second = MembershipFactory(user=user, role=Membership.Role.EDITOR).team
    stranger = member()
    own_job, second_job, stranger_job = _job(user), _job(user, second), _job(stranger)
    communicator = socket(user)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        for job in (stranger_job, second_job, own_job):
            await database_sync_to_async(services.job_claim)(job_id=job.pk, worker="w")
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert event == {
            "type": "job",
            "id": own_job.pk,
            "kind": "dataset.process",
            "status": "running",
            "progress": 0,
            "message": "",
            "log_tail": [],
            "finished": False,
            "dataset_id": None,
            "machine_id": None,
            "batch_id": None,
        }
        await database_sync_to_async(services.job_report_progress)(
            job_id=stranger_job.pk, progress=50, message="not yours"
        )
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()

    assert mine.pk != second.pk
    run(scenario)


def _write_from_another_connection(write: Any) -> None:
    """Runs in a thread: its own database connection, as a worker process would have."""
    try:
        write()
    finally:
        connections.close_all()


def test_poll_mode_sees_changes_made_by_another_process(poll_mode: str) -> None:
    """Without a channel layer nothing is pushed: the socket finds the changes a worker (here a
    thread with its own database connection) wrote, by looking at the database."""
    user = member()
    job = _job(user)
    communicator = socket(user)

    def work() -> None:
        services.job_claim(job_id=job.pk, worker="elsewhere:1")
        services.job_report_progress(job_id=job.pk, progress=40, message="Reading the file")

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await asyncio.to_thread(_write_from_another_connection, work)
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (event["id"], event["status"], event["progress"], event["message"]) == (
            job.pk,
            "running",
            40,
            "Reading the file",
        )

        await asyncio.to_thread(
            _write_from_another_connection,
            lambda: services.job_append_log(job_id=job.pk, line="1,000 rows read"),
        )
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert len(event["log_tail"]) == 1
        assert event["log_tail"][0].endswith(" 1,000 rows read")

        await asyncio.to_thread(
            _write_from_another_connection,
            lambda: services.job_succeed(job_id=job.pk, message="Ready"),
        )
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (event["status"], event["progress"], event["finished"]) == ("succeeded", 100, True)
        assert await communicator.receive_nothing(timeout=0.3)  # reported once

        # A job created and finished between two looks is reported too.
        def quick() -> None:
            new = _job(user)
            services.job_claim(job_id=new.pk, worker="elsewhere:1")
            services.job_succeed(job_id=new.pk)

        await asyncio.to_thread(_write_from_another_connection, quick)
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (event["status"], event["finished"]) == ("succeeded", True)
        assert event["id"] > job.pk
        await communicator.disconnect()

    run(scenario)


@pytest.mark.parametrize("removal", ["removed_by_owner", "left"])
def test_socket_closes_when_the_membership_is_removed(mode: str, removal: str) -> None:
    boss = member()
    team = boss.current_team
    user = member(Membership.Role.EDITOR, team=team)
    communicator = socket(user)

    def remove() -> None:
        if removal == "left":
            team_leave(caller=Caller.for_session(user), team_id=team.pk)
        else:
            membership = Membership.objects.select_related("user").get(team=team, user=user)
            membership_remove(caller=Caller.for_session(boss), membership=membership)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await database_sync_to_async(remove)()
        # Push: at once, through the user's group (the periodic check is 30 s away).
        # Poll: at the next look.
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_NOT_A_MEMBER}
        await communicator.disconnect(code=CLOSE_NOT_A_MEMBER)

    run(scenario)


def test_another_users_removal_does_not_close_the_socket(mode: str) -> None:
    boss = member()
    team = boss.current_team
    user = member(Membership.Role.EDITOR, team=team)
    colleague = member(Membership.Role.EDITOR, team=team)
    communicator = socket(user)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await database_sync_to_async(team_leave)(
            caller=Caller.for_session(colleague), team_id=team.pk
        )
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    run(scenario)


@pytest.mark.parametrize("ending", ["logged_out", "deactivated"])
def test_poll_mode_socket_closes_once_the_user_is_signed_out_or_deactivated(
    poll_mode: str, ending: str
) -> None:
    from django.contrib.sessions.models import Session

    user = member()
    communicator = socket(user)

    def end() -> None:
        if ending == "logged_out":
            Session.objects.all().delete()  # what logging out (or flushing sessions) does
        else:
            type(user).objects.filter(pk=user.pk).update(is_active=False)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await database_sync_to_async(end)()
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_NOT_A_MEMBER}
        await communicator.disconnect(code=CLOSE_NOT_A_MEMBER)

    run(scenario)
