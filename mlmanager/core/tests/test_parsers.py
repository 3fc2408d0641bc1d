"""Every API body parser refuses NUL characters (400 invalid_text): PostgreSQL cannot store
them, and one used to fail a whole buffered write."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from mlmanager.accounts.models import Team
from mlmanager.datasets.models import Dataset
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


def _assert_invalid_text(response: Any) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("invalid_text", {})
    assert "NUL" in error["message"]


def test_json_bodies_with_a_nul_anywhere_are_refused(api: APIClient, owner: Any) -> None:
    teams = Team.objects.count()
    for body in (
        '{"name": "A\\u0000 team"}',
        '{"name": "ok", "extra\\u0000": 1}',
        '{"name": "ok", "nested": [{"deep": ["\\u0000"]}]}',
    ):
        response = api.post("/api/v1/teams/", data=body, content_type="application/json")
        _assert_invalid_text(response)
    assert Team.objects.count() == teams


def test_a_nul_escape_written_as_text_is_not_a_nul(api: APIClient, owner: Any) -> None:
    response = api.post(
        "/api/v1/teams/", data='{"name": "A \\\\u0000 team"}', content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "A \\u0000 team"


def test_views_with_their_own_parser_list_refuse_it_too(
    api: APIClient,
    owner: Any,
    make_dataset: Any,  # noqa: F811 - the fixture
) -> None:
    """Views that name their parsers (JSON only, multipart) use the refusing ones."""
    dataset = make_dataset(owner)
    response = api.patch(
        f"/api/v1/datasets/{dataset.pk}/",
        data='{"name": "x\\u0000"}',
        content_type="application/json",
    )
    _assert_invalid_text(response)
    response = api.post(
        "/api/v1/models/",
        data='{"dataset": DATASET, "outputs": ["churned"], "name": "\\u0000"}'.replace(
            "DATASET", str(dataset.pk)
        ),
        content_type="application/json",
    )
    _assert_invalid_text(response)
    assert not Machine.objects.exists()
    assert Dataset.objects.get(pk=dataset.pk).name == "Churn"


def test_form_and_multipart_fields_are_checked(api: APIClient, owner: Any) -> None:
    upload = SimpleUploadedFile("rows.csv", b"a,b\n1,2\n", "text/csv")
    response = api.post("/api/v1/datasets/", {"file": upload, "name": "x\x00y"})
    _assert_invalid_text(response)
    response = api.post(
        "/api/v1/teams/", data="name=a%00b", content_type="application/x-www-form-urlencoded"
    )
    _assert_invalid_text(response)
    assert not Dataset.objects.exists()
