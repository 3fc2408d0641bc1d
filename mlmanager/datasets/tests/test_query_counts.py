"""List pages and APIs cost a fixed number of queries, however many rows they show."""

from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.datasets.models import Dataset, dataset_storage_dir
from mlmanager.jobs.services import job_create

pytestmark = pytest.mark.django_db


def _make(owner, count: int) -> None:
    for index in range(count):
        job = job_create(team=owner.current_team, created_by=owner, kind="dataset.process")
        Dataset.objects.create(
            team=owner.current_team,
            created_by=owner,
            name=f"d{index}",
            original_filename="d.csv",
            storage_dir=dataset_storage_dir(owner.current_team_id),
            job=job,
        )


@pytest.mark.parametrize(
    "url", ["/api/v1/datasets/", "/api/v1/jobs/", "/api/v1/teams/", "/api/v1/me/"]
)
def test_api_lists_do_not_grow_with_rows(api, owner, url, django_assert_max_num_queries) -> None:
    _make(owner, 2)
    api.get(url)  # warm-up: token last-used write, content types
    with django_assert_max_num_queries(6) as few:
        api.get(url)
    _make(owner, 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        api.get(url)


@pytest.mark.parametrize("url", ["/datasets/", "/jobs/"])
def test_list_pages_do_not_grow_with_rows(owner, url, django_assert_max_num_queries) -> None:
    client = Client()
    client.force_login(owner)
    _make(owner, 2)
    client.get(url)
    with django_assert_max_num_queries(12) as few:
        client.get(url)
    _make(owner, 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
