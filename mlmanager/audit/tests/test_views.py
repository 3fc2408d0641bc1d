"""The audit log page (/audit/): the current team's events, for its owners and admins."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from django.test import Client

from mlmanager.audit.tests.conftest import START
from mlmanager.core.tests.factories import member

pytestmark = pytest.mark.django_db

URL = "/audit/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_owner_sees_the_teams_events_newest_first(owner, record) -> None:
    team = owner.current_team
    record(owner, team, "invitation.created", at=START, target=team)
    record(
        owner,
        team,
        "membership.role_changed",
        at=START + dt.timedelta(hours=1),
        changes={"role": ("viewer", "editor")},
    )
    outsider = member("owner")
    record(outsider, outsider.current_team, "token.created", details={"name": "outsiders-token"})
    response = _client(owner).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="audit-event"') == 2
    assert html.index("Member&#x27;s role changed") < html.index("Invitation created")
    assert "viewer → editor" in html
    assert "203.0.113.7" in html
    assert "outsiders-token" not in html
    assert 'data-testid="nav-audit"' in html


def test_dates_in_the_users_zone_and_format(owner, record) -> None:
    owner.time_zone = "Asia/Tokyo"
    owner.date_order = "DMY"
    owner.date_separator = "."
    owner.save()
    record(owner, owner.current_team, "team.renamed", at=START)
    html = _client(owner).get(URL).content.decode()
    assert "01.03.2026 21:00" in html  # 12:00 UTC in Tokyo


def test_filters_keep_their_values_and_reach_the_pager(owner, record) -> None:
    team = owner.current_team
    for hour in range(55):
        record(owner, team, "token.created", at=START + dt.timedelta(hours=hour))
    record(owner, team, "team.renamed", at=START)
    client = _client(owner)
    # The form sends its empty fields: they mean "any".
    response = client.get(f"{URL}?action=token&actor=&since=2026-03-01&until=&target_type=")
    html = response.content.decode()
    assert html.count('data-testid="audit-event"') == 50
    assert (
        "action=token&amp;actor=&amp;since=2026-03-01&amp;until=&amp;target_type=&amp;page=2"
        in html
    )
    page_two = client.get(f"{URL}?action=token&since=2026-03-01&page=2").content.decode()
    assert page_two.count('data-testid="audit-event"') == 5


def test_a_bad_filter_shows_its_error_and_no_rows(owner, record) -> None:
    record(owner, owner.current_team, "team.renamed")
    response = _client(owner).get(f"{URL}?since=someday")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="audit-filter-errors"' in html
    assert 'data-testid="audit-event"' not in html


def test_htmx_gets_the_table_only(owner, record) -> None:
    record(owner, owner.current_team, "team.renamed")
    html = _client(owner).get(URL, headers={"HX-Request": "true"}).content.decode()
    assert html.startswith('<div id="audit-table">')


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_members_who_do_not_manage_are_refused(owner, record, role) -> None:
    record(owner, owner.current_team, "team.renamed")
    user = member(role, team=owner.current_team)
    response = _client(user).get(URL)
    assert response.status_code == 403
    assert "Team renamed" not in response.content.decode()
    # Nor is the page offered to them.
    menu = _client(user).get("/jobs/").content.decode()
    assert 'data-testid="nav-audit"' not in menu


def test_an_admin_sees_the_page(owner, record) -> None:
    record(owner, owner.current_team, "team.renamed")
    admin = member("admin", team=owner.current_team)
    assert _client(admin).get(URL).content.decode().count('data-testid="audit-event"') == 1


def test_signed_out_goes_to_log_in() -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_query_count_does_not_grow_with_rows(owner, record, django_assert_num_queries):
    team = owner.current_team
    client = _client(owner)
    client.get(URL)
    for _ in range(3):
        record(owner, team, "token.created")
    with django_assert_num_queries(8) as few:
        client.get(URL)
    for _ in range(30):
        record(owner, team, "token.created")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(URL)


def test_csv_export_of_the_filtered_events(owner, record) -> None:
    team = owner.current_team
    dataset_named_like_a_formula = team
    team.name = "=HYPERLINK(1)"
    team.save()
    record(owner, team, "team.renamed", at=START, target=dataset_named_like_a_formula)
    record(
        owner,
        team,
        "membership.role_changed",
        at=START + dt.timedelta(hours=1),
        changes={"role": ("viewer", "editor")},
    )
    outsider = member("owner")
    record(outsider, outsider.current_team, "team.renamed")
    client = _client(owner)
    page = client.get(f"{URL}?action=membership").content.decode()
    assert 'href="/audit/export.csv?action=membership"' in page
    response = client.get("/audit/export.csv?action=&since=2026-03-01")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("time,action,actor_email,")
    assert len(lines) == 3
    assert lines[1].startswith("2026-03-01T13:00:00+00:00,membership.role_changed,")
    rows = list(csv.DictReader(lines))
    assert json.loads(rows[0]["changes"]) == {"role": {"before": "viewer", "after": "editor"}}
    assert rows[1]["target"] == "'=HYPERLINK(1)"


def test_csv_export_is_refused_to_viewers(owner) -> None:
    viewer = member("viewer", team=owner.current_team)
    assert _client(viewer).get("/audit/export.csv").status_code == 403
