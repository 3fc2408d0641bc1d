"""The embedded default's look at a team's jobs: each change reported once, by index reads."""

from __future__ import annotations

from typing import Any

import pytest

from mlmanager.core.tests.factories import member
from mlmanager.jobs import services
from mlmanager.jobs.models import Job
from mlmanager.live.polling import TeamJobWatch

pytestmark = pytest.mark.django_db


def _job(user: Any) -> Job:
    return services.job_create(team=user.current_team, created_by=user, kind="dataset.process")


def _ids_and_statuses(watch: TeamJobWatch) -> list[tuple[int, str]]:
    return [(event["id"], event["status"]) for event in watch.changes()]


def test_each_change_is_reported_once(owner: Any, django_assert_num_queries: Any) -> None:
    job = _job(owner)
    watch = TeamJobWatch(owner.current_team_id)
    watch.start()

    with django_assert_num_queries(1):  # nothing changed: one small read
        assert watch.changes() == []
    services.job_claim(job_id=job.pk, worker="w")
    with django_assert_num_queries(2):  # the states, then the events of the changed jobs
        assert _ids_and_statuses(watch) == [(job.pk, "running")]
    assert watch.changes() == []

    services.job_report_progress(job_id=job.pk, progress=30)
    assert _ids_and_statuses(watch) == [(job.pk, "running")]
    services.job_append_log(job_id=job.pk, line="a line")
    assert [event["log_tail"][-1][9:] for event in watch.changes()] == ["a line"]

    services.job_fail(job_id=job.pk, error="broken")
    assert _ids_and_statuses(watch) == [(job.pk, "failed")]
    assert watch.changes() == []  # finished: reported once, then forgotten
    assert watch.states == {}


def test_jobs_created_after_the_start_are_reported_even_if_already_finished(owner: Any) -> None:
    watch = TeamJobWatch(owner.current_team_id)
    watch.start()
    queued = _job(owner)
    done = _job(owner)
    services.job_claim(job_id=done.pk, worker="w")
    services.job_succeed(job_id=done.pk)

    assert sorted(_ids_and_statuses(watch)) == [(queued.pk, "queued"), (done.pk, "succeeded")]
    assert watch.changes() == []


def test_another_teams_jobs_are_never_reported(owner: Any) -> None:
    stranger = member()
    theirs = _job(stranger)
    watch = TeamJobWatch(owner.current_team_id)
    watch.start()

    services.job_claim(job_id=theirs.pk, worker="w")
    _job(stranger)

    assert watch.changes() == []
