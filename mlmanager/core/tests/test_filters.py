"""List filters and paging (core.filters, core.pagination): every query parameter a list
declares is validated in one place and a bad one answers 400 naming it, never a 500 (SQLite
raised OverflowError on ids past 64 bits) or a silently ignored filter; a filter never shows
another team's objects."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.jobs.models import Job

pytestmark = pytest.mark.django_db

# Every list filter of the API: (list, parameter, a valid value).
FILTERS = [
    ("/api/v1/jobs/", "team", "1"),
    ("/api/v1/jobs/", "status", "queued"),
    ("/api/v1/datasets/", "team", "1"),
    ("/api/v1/datasets/", "status", "ready"),
    ("/api/v1/models/", "team", "1"),
    ("/api/v1/models/", "dataset", "1"),
    ("/api/v1/models/", "status", "ready"),
    ("/api/v1/predictions/", "model", "1"),
    ("/api/v1/predictions/", "version", "1"),
    ("/api/v1/predictions/", "source", "api"),
    ("/api/v1/predictions/", "has_feedback", "true"),
]
ID_FILTERS = [(path, name) for path, name, value in FILTERS if value == "1"]
CHOICE_FILTERS = [(path, name) for path, name, value in FILTERS if value != "1"]


def _invalid_filter(response: Any, name: str) -> list[str]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert error["message"].startswith(f"Query parameter {name}: ")
    return error["details"][name]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "name"), ID_FILTERS)
def test_id_past_64_bits_is_invalid_filter(api: APIClient, path: str, name: str) -> None:
    response = api.get(f"{path}?{name}=99999999999999999999")
    assert _invalid_filter(response, name) == [
        "Ensure this value is less than or equal to 9223372036854775807."
    ]


@pytest.mark.parametrize(("path", "name"), ID_FILTERS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "Enter a whole number."),
        ("1.5", "Enter a whole number."),
        ("0", "Ensure this value is greater than or equal to 1."),
        ("-3", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_id_that_is_not_one_is_invalid_filter(
    api: APIClient, path: str, name: str, value: str, message: str
) -> None:
    assert _invalid_filter(api.get(f"{path}?{name}={value}"), name) == [message]


@pytest.mark.parametrize(("path", "name"), CHOICE_FILTERS)
def test_unknown_choice_is_invalid_filter(api: APIClient, path: str, name: str) -> None:
    [message] = _invalid_filter(api.get(f"{path}?{name}=nonsense"), name)
    assert message in (
        "Select a valid choice. nonsense is not one of the available choices.",
        "Enter true or false.",
    )


@pytest.mark.parametrize(("path", "name", "value"), FILTERS)
def test_empty_value_is_invalid_filter(api: APIClient, path: str, name: str, value: str) -> None:
    assert _invalid_filter(api.get(f"{path}?{name}="), name) == ["This parameter may not be empty."]


@pytest.mark.parametrize(("path", "name", "value"), FILTERS)
def test_nul_character_is_invalid_text(api: APIClient, path: str, name: str, value: str) -> None:
    response = api.get(path, {name: f"{value}\x00"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_text"


@pytest.mark.parametrize(("path", "name", "value"), FILTERS)
def test_valid_filter_is_accepted(api: APIClient, path: str, name: str, value: str) -> None:
    response = api.get(f"{path}?{name}={value}")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_all_errors_are_named(api: APIClient) -> None:
    response = api.get("/api/v1/jobs/?status=nonsense&team=0")
    assert response.json()["error"]["details"] == {
        "status": ["Select a valid choice. nonsense is not one of the available choices."],
        "team": ["Ensure this value is greater than or equal to 1."],
    }


def test_a_filter_never_widens_the_list(api: APIClient, owner: Any) -> None:
    other = member("owner")
    theirs = Dataset.objects.create(
        team=other.current_team, name="theirs", original_filename="t.csv", storage_dir="t/1"
    )
    mine = Dataset.objects.create(
        team=owner.current_team, name="mine", original_filename="m.csv", storage_dir="m/1"
    )
    listed = api.get(f"/api/v1/datasets/?team={theirs.team_id}").json()
    assert listed["count"] == 0
    listed = api.get(f"/api/v1/datasets/?team={mine.team_id}&status=processing").json()
    assert [row["id"] for row in listed["results"]] == [mine.pk]


def test_filters_narrow_jobs(api: APIClient, owner: Any) -> None:
    queued = Job.objects.create(team=owner.current_team, kind="test", description="q")
    Job.objects.create(
        team=owner.current_team, kind="test", description="f", status=Job.Status.FAILED
    )
    listed = api.get("/api/v1/jobs/?status=queued").json()
    assert [row["id"] for row in listed["results"]] == [queued.pk]


@pytest.mark.parametrize(
    ("query", "name", "message"),
    [
        ("limit=0", "limit", "Ensure this value is greater than or equal to 1."),
        ("limit=501", "limit", "Ensure this value is less than or equal to 500."),
        ("limit=abc", "limit", "A valid integer is required."),
        ("offset=-1", "offset", "Ensure this value is greater than or equal to 0."),
        ("offset=", "offset", "A valid integer is required."),
    ],
)
def test_bad_paging_is_invalid_filter(api: APIClient, query: str, name: str, message: str) -> None:
    assert _invalid_filter(api.get(f"/api/v1/teams/?{query}"), name) == [message]


def test_paging_within_bounds(api: APIClient) -> None:
    listed = api.get("/api/v1/teams/?limit=500&offset=0").json()
    assert listed["count"] == 1
    assert listed["next"] is None
