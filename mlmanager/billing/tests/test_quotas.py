"""Quotas: each refused with its status and figures when reached, allowed below it; the plan a
team follows (its own, the default, none); billing off enforces nothing and queries nothing;
the limits are per team."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from mlmanager.billing.errors import QuotaExceeded
from mlmanager.billing.models import Account, DailyUsage, Plan
from mlmanager.billing.services import ledger, quotas, usage
from mlmanager.billing.throttling import TeamApiRateThrottle
from mlmanager.core.tests.factories import TeamFactory, api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def job(team: Any, status: str = Job.Status.RUNNING) -> Job:
    return Job.objects.create(team=team, kind="dataset_process", status=status)


def plan_for(team: Any, **limits: Any) -> Plan:
    plan = Plan.objects.create(name=f"plan of {team.pk}", **limits)
    account = ledger.team_account(team.pk)
    account.plan = plan
    account.save(update_fields=["plan"])
    return plan


def upload(client: APIClient, path: Path) -> Any:
    with path.open("rb") as handle:
        return client.post("/api/v1/datasets/", {"file": handle}, format="multipart")


def csv_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"table-{size}.csv"
    row = "1,2\n"
    path.write_text("a,b\n" + row * ((size - 4) // len(row)))
    return path


# --- the services F and the datasets call ------------------------------------------------------


def test_concurrent_jobs_refused_at_the_limit_with_429(billing_on: None) -> None:
    team = TeamFactory()
    plan_for(team, max_concurrent_jobs=2)
    job(team, Job.Status.QUEUED)
    job(team, Job.Status.SUCCEEDED)  # finished jobs do not count
    job(TeamFactory())  # nor other teams'
    quotas.quota_check_jobs(team_id=team.pk)  # 1 of 2
    job(team)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.quota_check_jobs(team_id=team.pk)
    assert refused.value.status_code == 429
    assert refused.value.code == "quota_exceeded"
    assert refused.value.details == {"quota": "concurrent_jobs", "limit": 2, "used": 2}
    assert refused.value.message == (
        "Quota exceeded: concurrent jobs is limited to 2 by your team's plan and 2 are in use. "
        "Try again later, or ask for a bigger plan."
    )


def test_predictions_per_day_refused_past_the_limit(billing_on: None) -> None:
    team = TeamFactory()
    plan_for(team, max_predictions_per_day=100)
    usage.usage_count_predictions(team_id=team.pk, rows=60)
    usage.usage_count_predictions(team_id=team.pk, rows=30)
    assert DailyUsage.objects.get(team=team).predictions == 90
    quotas.quota_check_predictions(team_id=team.pk, rows=10)  # exactly the limit: allowed
    with pytest.raises(QuotaExceeded) as refused:
        quotas.quota_check_predictions(team_id=team.pk, rows=11)
    assert refused.value.status_code == 429
    assert refused.value.details == {"quota": "predictions_per_day", "limit": 100, "used": 90}
    assert refused.value.retry_after_s is not None
    assert 1 <= refused.value.retry_after_s <= 86401


def test_storage_refused_with_403_past_the_limit(billing_on: None) -> None:
    team = TeamFactory()
    plan_for(team, max_storage_mb=2)
    Dataset.objects.create(
        team=team, name="d", original_filename="d.csv", storage_dir="x/1", size_bytes=MB + 1
    )
    quotas.quota_check_storage(team_id=team.pk, adding_bytes=MB - 1)  # exactly 2 MB: allowed
    with pytest.raises(QuotaExceeded) as refused:
        quotas.quota_check_storage(team_id=team.pk, adding_bytes=MB)
    assert refused.value.status_code == 403
    assert refused.value.details == {"quota": "storage_mb", "limit": 2, "used": 2}
    assert refused.value.message == (
        "Quota exceeded: storage (MB) is limited to 2 by your team's plan and 2 are in use. "
        "This needs 1 more. Free some, or ask for a bigger plan."
    )


def test_the_default_plan_applies_to_teams_without_their_own(billing_on: None) -> None:
    team, other = TeamFactory(), TeamFactory()
    Plan.objects.create(name="default", is_default=True, max_concurrent_jobs=1)
    plan_for(other, max_concurrent_jobs=5)
    job(team)
    job(other)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.quota_check_jobs(team_id=team.pk)
    assert refused.value.details["limit"] == 1
    quotas.quota_check_jobs(team_id=other.pk)  # its own plan: 1 of 5
    assert quotas.team_plan(team_id=other.pk).max_concurrent_jobs == 5


def test_an_account_without_a_plan_follows_the_default(billing_on: None) -> None:
    team = TeamFactory()
    ledger.team_account(team.pk)
    Plan.objects.create(name="default", is_default=True, max_predictions_per_day=5)
    assert quotas.team_plan(team_id=team.pk).name == "default"
    with pytest.raises(QuotaExceeded):
        quotas.quota_check_predictions(team_id=team.pk, rows=6)


def test_no_plan_or_an_empty_limit_is_unlimited(billing_on: None) -> None:
    team = TeamFactory()
    for _ in range(3):
        job(team)
    quotas.quota_check_jobs(team_id=team.pk)
    quotas.quota_check_predictions(team_id=team.pk, rows=10**9)
    quotas.quota_check_storage(team_id=team.pk, adding_bytes=10**12)
    plan_for(team, max_predictions_per_day=10)  # jobs and storage left unlimited
    quotas.quota_check_jobs(team_id=team.pk)
    quotas.quota_check_storage(team_id=team.pk, adding_bytes=10**12)


def test_billing_off_enforces_nothing_and_queries_nothing() -> None:
    team = TeamFactory()
    Plan.objects.create(
        name="default",
        is_default=True,
        max_concurrent_jobs=0,
        max_predictions_per_day=0,
        max_storage_mb=0,
        max_api_requests_per_minute=0,
    )
    job(team)
    with CaptureQueriesContext(connection) as queries:
        quotas.quota_check_jobs(team_id=team.pk)
        quotas.quota_check_predictions(team_id=team.pk, rows=1000)
        quotas.quota_check_storage(team_id=team.pk, adding_bytes=MB)
        usage.usage_count_predictions(team_id=team.pk, rows=1000)
        assert TeamApiRateThrottle().allow_request(object(), None) is True
    assert len(queries) == 0
    assert not DailyUsage.objects.exists()
    assert not Account.objects.exists()


# --- at the dataset upload ---------------------------------------------------------------------


def test_upload_past_the_storage_quota_is_403_and_keeps_nothing(
    billing_on: None, owner: Any, api: APIClient, tmp_path: Path, settings: Any
) -> None:
    team = owner.current_team
    plan_for(team, max_storage_mb=1)
    first = upload(api, csv_file(tmp_path, 600_000))
    assert first.status_code == 202
    refused = upload(api, csv_file(tmp_path, 600_004))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert refused.json()["error"]["details"] == {"quota": "storage_mb", "limit": 1, "used": 1}
    assert Dataset.objects.filter(team=team).count() == 1
    kept = list((Path(settings.MEDIA_ROOT) / f"datasets/team-{team.pk}").iterdir())
    assert len(kept) == 1  # the refused upload's folder was removed


def test_upload_at_the_jobs_quota_is_429_and_starts_nothing(
    billing_on: None, owner: Any, api: APIClient, tmp_path: Path
) -> None:
    team = owner.current_team
    plan_for(team, max_concurrent_jobs=1)
    assert upload(api, csv_file(tmp_path, 100)).status_code == 202  # its job is queued
    refused = upload(api, csv_file(tmp_path, 104))
    assert refused.status_code == 429
    assert refused.json()["error"]["details"] == {
        "quota": "concurrent_jobs",
        "limit": 1,
        "used": 1,
    }
    assert Dataset.objects.filter(team=team).count() == 1
    assert Job.objects.filter(team=team).count() == 1
    Job.objects.filter(team=team).update(status=Job.Status.SUCCEEDED)
    assert upload(api, csv_file(tmp_path, 104)).status_code == 202  # the job ended: room again


def test_billing_off_uploads_past_every_limit(owner: Any, api: APIClient, tmp_path: Path) -> None:
    plan_for(owner.current_team, max_concurrent_jobs=0, max_storage_mb=0)
    assert upload(api, csv_file(tmp_path, 100)).status_code == 202


# --- API requests per minute -------------------------------------------------------------------


@pytest.fixture
def frozen_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request in one minute window (10 s into it), whatever the clock says."""
    monkeypatch.setattr(TeamApiRateThrottle, "timer", lambda self: 60 * 1_000_000 + 10.0)
    monkeypatch.setattr("mlmanager.billing.services.usage.time.time", lambda: 60 * 1_000_000 + 10.0)


def test_api_requests_past_the_minute_limit_are_429_with_retry_after(
    billing_on: None, frozen_minute: None, owner: Any, api: APIClient
) -> None:
    plan_for(owner.current_team, max_api_requests_per_minute=3)
    for _ in range(3):
        assert api.get("/api/v1/datasets/").status_code == 200
    refused = api.get("/api/v1/datasets/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "50"
    assert refused.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "Quota exceeded: API requests per minute is limited to 3 by your team's "
            "plan and 3 are in use. Try again later, or ask for a bigger plan.",
            "details": {"quota": "api_requests_per_minute", "limit": 3, "used": 3},
        }
    }


def test_api_requests_count_per_team_across_members_and_tokens(
    billing_on: None, frozen_minute: None, owner: Any, api: APIClient
) -> None:
    team = owner.current_team
    plan_for(team, max_api_requests_per_minute=2)
    colleague = api_client_for(member("viewer", team=team))
    assert api.get("/api/v1/datasets/").status_code == 200
    assert colleague.get("/api/v1/datasets/").status_code == 200
    assert api_client_for(owner).get("/api/v1/datasets/").status_code == 429  # a new token too
    # Another team (no limit) is not counted with it, even for a member of both.
    other = TeamFactory()
    member_of_both = member("owner", team=other)
    from mlmanager.accounts.models import Membership

    Membership.objects.create(team=team, user=member_of_both, role="viewer")
    assert api_client_for(member_of_both).get("/api/v1/datasets/").status_code == 200
    assert api_client_for(member_of_both, team=team).get("/api/v1/datasets/").status_code == 429


def test_upload_page_past_a_quota_shows_what_was_exceeded(
    billing_on: None, owner: Any, tmp_path: Path
) -> None:
    from django.test import Client

    plan_for(owner.current_team, max_storage_mb=1, max_concurrent_jobs=0)
    client = Client()
    client.force_login(owner)
    with csv_file(tmp_path, 100).open("rb") as handle:
        jobs_refused = client.post("/datasets/", {"file": handle, "name": "t"})
    assert jobs_refused.status_code == 200  # the form again, with the refusal
    assert (
        "Quota exceeded: concurrent jobs is limited to 0 by your team&#x27;s plan and 0 are in use."
        in jobs_refused.content.decode()
    )
    with csv_file(tmp_path, 2 * MB).open("rb") as handle:
        storage_refused = client.post("/datasets/", {"file": handle, "name": "t"})
    assert storage_refused.status_code == 403
    assert "Quota exceeded: storage (MB) is limited to 1" in storage_refused.content.decode()
    assert not Dataset.objects.exists()
