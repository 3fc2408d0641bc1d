"""The usage page and `GET /api/v1/billing/usage/`: each quota's limit and current use, today's
predictions, storage and running jobs; the caller's team only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from mlmanager.billing.models import Plan
from mlmanager.billing.services import ledger, usage
from mlmanager.core import storage
from mlmanager.core.tests.factories import TeamFactory, api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job
from mlmanager.machines.models import Machine, ModelVersion

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def stored_team(team: Any) -> None:
    """2 MiB of datasets, a 1 MiB model version on disk, two unfinished jobs and one finished,
    and 42 rows predicted today."""
    Dataset.objects.create(
        team=team, name="d", original_filename="d.csv", storage_dir=f"d/{team.pk}", size_bytes=MB
    )
    Dataset.objects.create(
        team=team, name="e", original_filename="e.csv", storage_dir=f"e/{team.pk}", size_bytes=MB
    )
    machine = Machine.objects.create(
        team=team, name="m", time_budget_s=60, storage_dir=f"models/{team.pk}", outputs=[]
    )
    version = ModelVersion.objects.create(
        team=team,
        machine=machine,
        number=1,
        outcome=ModelVersion.Outcome.SUCCEEDED,
        storage_dir=f"models/{team.pk}/v1",
    )
    folder = storage.local_path(version.storage_dir)
    (folder / "members").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"x" * (MB - 100))
    (folder / "members" / "a.safetensors").write_bytes(b"y" * 100)
    for status in (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.FAILED):
        Job.objects.create(team=team, kind="dataset_process", status=status)
    usage.usage_count_predictions(team_id=team.pk, rows=42)


def test_storage_counts_datasets_and_version_folders(billing_on: None) -> None:
    team = TeamFactory()
    stored_team(team)
    assert usage.versions_bytes(team_id=team.pk) == MB
    assert usage.storage_used_bytes(team_id=team.pk) == 3 * MB
    assert usage.storage_used_bytes(team_id=TeamFactory().pk) == 0


def test_usage_api_gives_limits_and_use(billing_on: None, owner: Any, api: APIClient) -> None:
    team = owner.current_team
    stored_team(team)
    stored_team(TeamFactory())  # another team's figures are not counted
    plan = Plan.objects.create(
        name="Small", max_concurrent_jobs=5, max_storage_mb=10, max_predictions_per_day=1000
    )
    account = ledger.team_account(team.pk)
    account.plan = plan
    account.save(update_fields=["plan"])
    response = api.get("/api/v1/billing/usage/")
    assert response.status_code == 200
    assert response.json() == {
        "team": team.pk,
        "billing_enabled": True,
        "plan": "Small",
        "quotas": [
            {"quota": "concurrent_jobs", "label": "concurrent jobs", "limit": 5, "used": 2},
            {"quota": "storage_mb", "label": "storage (MB)", "limit": 10, "used": 3},
            {
                "quota": "predictions_per_day",
                "label": "predictions per day",
                "limit": 1000,
                "used": 42,
            },
            {
                "quota": "api_requests_per_minute",
                "label": "API requests per minute",
                "limit": None,
                "used": 0,  # no limit: not counted
            },
        ],
        "predictions_today": 42,
        "storage_used_bytes": 3 * MB,
        "running_jobs": 2,
    }


def test_usage_api_with_billing_off_shows_use_without_limits(owner: Any, api: APIClient) -> None:
    Plan.objects.create(name="Default", is_default=True, max_concurrent_jobs=1)
    Job.objects.create(team=owner.current_team, kind="dataset_process")
    body = api.get("/api/v1/billing/usage/").json()
    assert body["billing_enabled"] is False
    assert [q["limit"] for q in body["quotas"]] == [None, None, None, None]
    assert body["running_jobs"] == 1
    assert body["quotas"][0]["used"] == 1


def test_usage_api_of_another_team_is_not_found(owner: Any, api: APIClient) -> None:
    other = TeamFactory()
    assert api.get(f"/api/v1/billing/usage/?team={other.pk}").status_code == 404
    assert api.get("/api/v1/billing/usage/?team=abc").status_code == 404
    # A team token reaches its own team only.
    second = TeamFactory()
    user = member("viewer", team=second)
    limited = api_client_for(user, team=second)
    assert limited.get(f"/api/v1/billing/usage/?team={second.pk}").json()["team"] == second.pk


def test_usage_page_shows_each_quota_with_a_bar(billing_on: None, owner: Any) -> None:
    team = owner.current_team
    stored_team(team)
    Plan.objects.create(name="Default", is_default=True, max_concurrent_jobs=2)
    client = Client()
    client.force_login(owner)
    response = client.get("/billing/usage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your team's plan: Default." in page
    assert '<progress value="100" max="100" aria-label="concurrent jobs">' in page
    assert '<td data-testid="quota-used">2</td>' in page
    assert '<td data-testid="quota-limit">2</td>' in page
    assert '<dd data-testid="usage-predictions-today">42</dd>' in page
    assert '<dd data-testid="usage-storage">3.0\xa0MB</dd>' in page
    assert page.count('<td data-testid="quota-limit">unlimited</td>') == 3


def test_usage_page_for_a_viewer_with_billing_off(owner: Any) -> None:
    viewer = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(viewer)
    response = client.get("/billing/usage/")
    assert response.status_code == 200
    assert "Billing is off on this platform" in response.content.decode()


def test_usage_page_needs_sign_in(db: None, tmp_path: Path) -> None:
    response = Client().get("/billing/usage/")
    assert response.status_code == 302
