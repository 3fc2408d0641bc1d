"""The registries (core.registries), and the proof that an app plugs into jobs and live updates
through them alone: the test app `registry_app`, installed only here, adds a job kind, a
periodic task, a queue start-up hook and a live event without jobs/ or live/ naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.test import override_settings

import mlmanager
from mlmanager.core.registries import (
    JobKind,
    PeriodicTask,
    Registry,
    job_kinds,
    live_event_resolvers,
    periodic_tasks,
    queue_startup_hooks,
)
from mlmanager.core.tests.factories import member
from mlmanager.core.tests.registry_app import jobs as registry_app_jobs
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.jobs.scheduler import run_due
from mlmanager.live.events import team_group
from mlmanager.live.polling import TeamJobWatch
from mlmanager.live.tests.conftest import (
    IN_MEMORY_LAYER,
    poll_mode,  # noqa: F401 - fixture
    run,
    socket,
)

REGISTRY_APP = "mlmanager.core.tests.registry_app"


@pytest.fixture
def registry_app() -> Iterator[None]:
    """Installs the test app for one test: Django populates the apps again, so every app's
    ready() runs a second time (registering equal entries again is allowed) and the test app's
    registers its own. Its entries leave with it."""
    registry_app_jobs.TICKS.clear()
    registry_app_jobs.STARTS.clear()
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, REGISTRY_APP]):
        yield
    job_kinds.unregister(registry_app_jobs.GREET)
    live_event_resolvers.unregister(registry_app_jobs.GREET)
    periodic_tasks.unregister(registry_app_jobs.TICK)
    queue_startup_hooks.unregister(registry_app_jobs.STARTUP)


def _noop() -> None:
    pass


def _interval() -> float:
    return 1.0


def test_a_name_is_registered_once_unless_the_entry_is_equal() -> None:
    registry: Registry[PeriodicTask] = Registry("periodic task")
    registry.register(PeriodicTask("tick", _interval, _noop))
    registry.register(PeriodicTask("tick", _interval, _noop))  # ready() run again: no change
    with pytest.raises(ValueError, match="periodic task 'tick' is already registered"):
        registry.register(PeriodicTask("tick", _interval, _interval))
    assert registry.names() == ["tick"]
    with pytest.raises(LookupError, match="no periodic task 'tock' is registered"):
        registry.get("tock")


def test_the_apps_register_their_kinds() -> None:
    assert job_kinds.get("machine.train") == JobKind(
        "machine.train",
        job_kinds.get("machine.train").label,
        "machines.TrainingRun",
        job_kinds.get("machine.train").links,
    )
    assert {"dataset.process", "machine.train", "batch.predict"} <= set(job_kinds.names())
    assert "training" in {hook.queue for hook in queue_startup_hooks}


@pytest.mark.django_db
def test_an_unregistered_kind_is_refused(owner: Any) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=r"Unknown job kind: registry_app\.greet"):
        services.job_create(team=owner.current_team, created_by=owner, kind=registry_app_jobs.GREET)


def test_jobs_and_live_name_no_app() -> None:
    """The seams hold: what an app adds reaches jobs and live updates through the registries,
    so neither package (tests aside) names the apps that use them."""
    root = Path(mlmanager.__file__).parent
    named = [
        f"{path.relative_to(root)}: {app}"
        for package in ("jobs", "live")
        for path in (root / package).rglob("*")
        if path.suffix in {".py", ".html"}
        and "tests" not in path.parts
        and "migrations" not in path.parts
        for app in ("datasets", "machines", "predictions", "registry_app")
        if f"mlmanager.{app}" in path.read_text() or f"{app}:" in path.read_text()
    ]
    assert named == []


def test_its_job_kind_is_enqueued_claimed_and_run_by_the_database_worker(
    registry_app: None, owner: Any, run_jobs: Any
) -> None:
    from mlmanager.core.tests.registry_app.tasks import greet_team

    team = owner.current_team
    with transaction.atomic():
        job = services.job_create(
            team=team, created_by=owner, kind=registry_app_jobs.GREET, subject=team
        )
        services.job_enqueue(job=job, task=greet_team, team_id=team.pk)

    run_jobs()

    job.refresh_from_db()
    assert (job.status, job.result, job.subject) == (
        Job.Status.SUCCEEDED,
        {"greeted": team.name},
        team,
    )
    assert str(job).startswith("Greet a team #")
    assert registry_app_jobs.STARTS == ["started"]  # its hook ran as the worker started


@pytest.mark.django_db
def test_its_periodic_task_runs_once_per_slot(registry_app: None) -> None:
    now = 100 * registry_app_jobs.TICK_INTERVAL_S
    # Every registered task is due in its first slot: the reaper, each app's, and the test app's.
    assert run_due(periodic_tasks, now=now, owner="scheduler-a") == len(periodic_tasks)
    assert run_due(periodic_tasks, now=now + 1, owner="scheduler-b") == 0
    assert registry_app_jobs.TICKS == ["tick"]
    run_due(periodic_tasks, now=now + registry_app_jobs.TICK_INTERVAL_S, owner="scheduler-b")
    assert registry_app_jobs.TICKS == ["tick", "tick"]


@pytest.mark.django_db
def test_its_live_event_reaches_the_team_with_the_page_it_resolved(
    registry_app: None, owner: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    team = owner.current_team
    async_to_sync(layer.group_add)(team_group(team.pk), channel)
    watch = TeamJobWatch(team.pk)
    watch.start()
    job = services.job_create(
        team=team, created_by=owner, kind=registry_app_jobs.GREET, subject=team
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.job_claim(job_id=job.pk, worker="w")

    pushed = async_to_sync(layer.receive)(channel)
    (polled,) = watch.changes()  # the embedded default's transport finds the same event
    for event in (pushed["event"], polled):
        assert (event["kind"], event["status"], event["team_page_id"]) == (
            registry_app_jobs.GREET,
            "running",
            team.pk,
        )
        assert event["machine_id"] is None  # every page sees one shape of event
    assert pushed["team_id"] == team.pk


@pytest.mark.django_db(transaction=True)
def test_its_live_event_reaches_the_teams_socket(registry_app: None, poll_mode: str) -> None:  # noqa: F811
    user = member()
    team = user.current_team
    job = services.job_create(
        team=team, created_by=user, kind=registry_app_jobs.GREET, subject=team
    )
    communicator = socket(user)

    async def scenario() -> None:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await database_sync_to_async(services.job_claim)(job_id=job.pk, worker="w")
        event = await communicator.receive_json_from(timeout=5)
        assert (event["id"], event["team_page_id"]) == (job.pk, team.pk)
        await communicator.disconnect()

    run(scenario)


@pytest.mark.django_db
def test_the_jobs_page_links_its_subject(registry_app: None, owner: Any, client: Any) -> None:
    team = owner.current_team
    services.job_create(team=team, created_by=owner, kind=registry_app_jobs.GREET, subject=team)
    client.force_login(owner)

    listing = client.get("/jobs/").content.decode()

    link = f'<a href="/teams/{team.pk}/" data-testid="job-subject-team">Team: {team.name}</a>'
    assert link in listing
