"""The team's prediction log (/predictions/): every model of the current team, filtered by
model, date range, feedback and source, never another team's rows."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from mlmanager.accounts.models import User
from mlmanager.core.tests.factories import member
from mlmanager.machines.models import Machine
from mlmanager.predictions.models import Prediction

pytestmark = pytest.mark.django_db

URL = "/predictions/"


def make_machine(user: User, name: str) -> Machine:
    return Machine.objects.create(
        team=user.current_team,
        created_by=user,
        name=name,
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=f"models/{uuid.uuid4().hex}",
    )


def log(
    machine: Machine,
    *,
    source: str = Prediction.Source.API,
    feedback: Any = None,
    at: dt.datetime | None = None,
    value: str = "yes",
) -> Prediction:
    prediction = Prediction.objects.create(
        team_id=machine.team_id,
        machine=machine,
        version_number=1,
        source=source,
        inputs={"plan": "pro"},
        outputs={"churned": {"value": value}},
        latency_ms=1.0,
        feedback=feedback,
    )
    if at is not None:
        Prediction.objects.filter(pk=prediction.pk).update(created_at=at)
    return prediction


@pytest.fixture
def browser(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def rows(page: str) -> int:
    return page.count('data-testid="log-row"')


def test_every_model_of_the_team_and_no_other_team(browser: Client, owner: User) -> None:
    churn, spend = make_machine(owner, "Churn"), make_machine(owner, "Spend")
    log(churn, value="churn-answer")
    log(spend, value="spend-answer")
    stranger = member("owner")
    log(make_machine(stranger, "Theirs"), value="their-answer")

    page = browser.get(URL).content.decode()
    assert rows(page) == 2
    assert "churn-answer" in page and "spend-answer" in page and "their-answer" not in page
    # Each row names its model, linking to that model's own log.
    assert f'href="/models/{churn.pk}/predictions/" data-testid="log-row-model">Churn</a>' in page
    # The model filter offers the team's models only.
    assert f'<option value="{churn.pk}">Churn</option>' in page
    assert "Theirs" not in page


def test_filters_by_model_source_and_feedback(browser: Client, owner: User) -> None:
    churn, spend = make_machine(owner, "Churn"), make_machine(owner, "Spend")
    log(churn, source=Prediction.Source.UI, feedback={"churned": "no"})
    log(churn, source=Prediction.Source.API)
    log(spend, source=Prediction.Source.API, feedback={"churned": "yes"})

    assert rows(browser.get(URL, {"model": churn.pk}).content.decode()) == 2
    assert rows(browser.get(URL, {"source": "ui"}).content.decode()) == 1
    assert rows(browser.get(URL, {"has_feedback": "true"}).content.decode()) == 2
    assert rows(browser.get(URL, {"has_feedback": "false"}).content.decode()) == 1
    both = browser.get(URL, {"model": spend.pk, "has_feedback": "true", "source": "api"})
    assert rows(both.content.decode()) == 1
    # htmx asks for the table alone when a filter changes.
    partial = browser.get(URL, {"model": churn.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="log-table">') and rows(partial) == 2


def test_dates_are_whole_days_of_the_users_time_zone(browser: Client, owner: User) -> None:
    owner.time_zone = "Asia/Tokyo"  # UTC+9
    owner.save(update_fields=["time_zone"])
    churn = make_machine(owner, "Churn")
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    log(churn, at=dt.datetime(2026, 3, 1, 0, 30, tzinfo=tokyo), value="first-of-march")
    log(churn, at=dt.datetime(2026, 3, 2, 23, 59, tzinfo=tokyo), value="second-of-march")
    log(churn, at=dt.datetime(2026, 3, 3, 0, 1, tzinfo=tokyo), value="third-of-march")

    page = browser.get(URL, {"since": "2026-03-01", "until": "2026-03-02"}).content.decode()
    assert "first-of-march" in page and "second-of-march" in page
    assert "third-of-march" not in page
    only_third = browser.get(URL, {"since": "2026-03-03"}).content.decode()
    assert rows(only_third) == 1 and "third-of-march" in only_third


@pytest.mark.parametrize(
    "params",
    [
        {"model": "999999999"},
        {"model": "x"},
        {"source": "batch-of-nothing"},
        {"has_feedback": "maybe"},
        {"since": "not a date"},
        {"until": "9999-12-31"},
        {"since": "0001-01-01"},
    ],
)
def test_a_filter_the_page_cannot_use_is_ignored(
    browser: Client, owner: User, params: dict[str, str]
) -> None:
    log(make_machine(owner, "Churn"))
    response = browser.get(URL, params)
    assert response.status_code == 200
    assert rows(response.content.decode()) == 1


def test_another_teams_model_id_filters_nothing_of_theirs(browser: Client, owner: User) -> None:
    stranger = member("owner")
    theirs = make_machine(stranger, "Theirs")
    log(theirs, value="their-answer")
    log(make_machine(owner, "Churn"), value="our-answer")
    page = browser.get(URL, {"model": theirs.pk}).content.decode()
    assert "their-answer" not in page and "our-answer" in page  # ignored, not applied


def test_the_pager_keeps_the_filters_and_queries_do_not_grow_with_rows(
    browser: Client, owner: User
) -> None:
    churn = make_machine(owner, "Churn")
    for _ in range(3):
        log(churn, source=Prediction.Source.UI)
    with CaptureQueriesContext(connection) as few:
        browser.get(URL, {"source": "ui"})
    for _ in range(60):
        log(churn, source=Prediction.Source.UI)
    with CaptureQueriesContext(connection) as many:
        page = browser.get(URL, {"source": "ui"}).content.decode()
    assert len(many) == len(few)
    assert rows(page) == 50
    assert 'href="?source=ui&amp;page=2"' in page


def test_the_top_bar_leads_to_the_team_log(browser: Client) -> None:
    page = browser.get("/datasets/").content.decode()
    assert f'href="{URL}" data-testid="nav-predictions"' in page


def test_the_models_own_log_keeps_its_filters_in_the_pager(browser: Client, owner: User) -> None:
    churn = make_machine(owner, "Churn")
    for _ in range(51):
        log(churn, source=Prediction.Source.UI)
    log(churn, source=Prediction.Source.API)
    page = browser.get(f"/models/{churn.pk}/predictions/", {"source": "ui"}).content.decode()
    assert rows(page) == 50
    assert 'href="?source=ui&amp;page=2"' in page
    last = browser.get(f"/models/{churn.pk}/predictions/", {"source": "ui", "page": "2"})
    assert rows(last.content.decode()) == 1


def test_the_api_filters_the_log_by_the_pages_days(owner: User) -> None:
    from rest_framework.test import APIClient

    churn = make_machine(owner, "Churn")
    log(churn, at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), value="first-of-march")
    log(churn, at=dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC), value="third-of-march")
    api = APIClient()
    api.force_authenticate(owner)
    answer = api.get("/api/v1/predictions/", {"since": "2026-03-02"}).json()
    assert [row["outputs"]["churned"]["value"] for row in answer["results"]] == ["third-of-march"]
    answer = api.get("/api/v1/predictions/", {"until": "2026-03-02"}).json()
    assert [row["outputs"]["churned"]["value"] for row in answer["results"]] == ["first-of-march"]
    refused = api.get("/api/v1/predictions/", {"since": "not a date"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_filter"
