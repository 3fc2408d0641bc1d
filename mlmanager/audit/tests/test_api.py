"""GET /api/v1/audit/: owners and admins read their teams' events, filtered and paginated."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from mlmanager.audit.tests.conftest import START
from mlmanager.core.tests.factories import MembershipFactory, api_client_for, member

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/"


@pytest.fixture
def events(owner, record):
    """Four events of the owner's team, an hour apart, and one of another team."""
    team = owner.current_team
    admin = member("admin", team=team)
    hour = dt.timedelta(hours=1)
    made = {
        "created": record(owner, team, "invitation.created", at=START, target=team),
        "role": record(
            owner,
            team,
            "membership.role_changed",
            at=START + hour,
            changes={"role": ("viewer", "editor")},
        ),
        "revoked": record(admin, team, "invitation.revoked", at=START + 2 * hour),
        "token": record(admin, team, "token.created", at=START + 3 * hour),
    }
    outsider = member("owner")
    made["other_team"] = record(outsider, outsider.current_team, "token.created", at=START)
    made["admin"] = admin
    return made


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [event["id"] for event in response.json()["results"]]


def test_newest_first_only_own_teams_with_the_full_shape(api, owner, events) -> None:
    response = api.get(URL)
    assert _ids(response) == [events[k].pk for k in ("token", "revoked", "role", "created")]
    body = response.json()
    assert body["count"] == 4
    role = body["results"][2]
    assert role == {
        "id": events["role"].pk,
        "team": owner.current_team.pk,
        "created_at": "2026-03-01T13:00:00Z",
        "action": "membership.role_changed",
        "actor": {"id": owner.pk, "email": owner.email},
        "credential": "session",
        "credential_id": None,
        "address": "203.0.113.7",
        "target": None,
        "changes": {"role": {"before": "viewer", "after": "editor"}},
        "details": {},
    }
    team = owner.current_team
    assert body["results"][3]["target"] == {"type": "team", "id": team.pk, "repr": str(team)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=invitation.created", ["created"]),
        ("action=invitation", ["revoked", "created"]),
        ("action=membership.role_changed", ["role"]),
        ("since=2026-03-01T13:00:00Z", ["token", "revoked", "role"]),
        ("since=2026-03-01T14:00:00%2B01:00", ["token", "revoked", "role"]),
        ("since=2026-03-01T14:30:00", ["token"]),  # no offset: the active zone (UTC here)
        ("until=2026-03-01T13:00:00Z", ["role", "created"]),
        ("until=2026-03-01", ["token", "revoked", "role", "created"]),
        ("until=2026-02-28", []),
        ("since=2026-03-02", []),
        ("target_type=team", ["created"]),
        ("action=invitation&since=2026-03-01T12:30:00Z", ["revoked"]),
    ],
)
def test_filters(api, events, query, expected) -> None:
    assert _ids(api.get(f"{URL}?{query}")) == [events[k].pk for k in expected]


def test_filter_by_actor_email_or_id_and_target(api, owner, events) -> None:
    admin = events["admin"]
    assert _ids(api.get(f"{URL}?actor={admin.email.upper()}")) == [
        events["token"].pk,
        events["revoked"].pk,
    ]
    assert _ids(api.get(f"{URL}?actor={owner.pk}")) == [events["role"].pk, events["created"].pk]
    team_id = owner.current_team.pk
    assert _ids(api.get(f"{URL}?target_type=team&target_id={team_id}")) == [events["created"].pk]


def test_a_deleted_actor_is_still_found_by_email(api, events) -> None:
    admin = events["admin"]
    email = admin.email
    admin.delete()
    response = api.get(f"{URL}?actor={email}")
    assert _ids(response) == [events["token"].pk, events["revoked"].pk]
    assert response.json()["results"][0]["actor"] == {"id": None, "email": email}


def test_paginated(api, events) -> None:
    first = api.get(f"{URL}?limit=3").json()
    assert (first["count"], len(first["results"])) == (4, 3)
    assert first["next"] is not None and first["previous"] is None
    second = api.get(f"{URL}?limit=3&offset=3").json()
    assert [e["id"] for e in second["results"]] == [events["created"].pk]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=yesterday", "since"),
        ("since=2026-02-30", "since"),
        ("until=2026-13-01", "until"),
        ("action=membership.rolechanged", "action"),
        ("since=", "since"),
        ("target_type=Team;", "target_type"),
        ("target_id=-1", "target_id"),
        ("team=abc", "team"),
        ("limit=0", "limit"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_parameter(api, events, query, parameter) -> None:
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert list(error["details"]) == [parameter]


@pytest.mark.parametrize("actor", ["nobody", "0", "a@", str(2**63)])
def test_an_actor_that_is_no_id_nor_recorded_address_finds_nothing(api, events, actor) -> None:
    response = api.get(URL, {"actor": actor})
    assert (response.status_code, response.json()["count"]) == (200, 0)


def test_a_moment_past_what_utc_holds_is_the_nearest_end_of_time(api, events) -> None:
    # Valid ISO 8601 (as the schema documents it), yet before 0001-01-01 in UTC.
    everything = api.get(f"{URL}?since=0001-01-01T00:00:00%2B05:00")
    assert everything.status_code == 200
    assert everything.json()["count"] == 4
    nothing = api.get(f"{URL}?until=0001-01-01T00:00:00%2B05:00")
    assert (nothing.status_code, nothing.json()["count"]) == (200, 0)


def test_team_filter_and_access(owner, events) -> None:
    team = owner.current_team
    api = api_client_for(owner)
    assert len(_ids(api.get(f"{URL}?team={team.pk}"))) == 4
    # Another team's id: not found, however it is asked.
    other = events["other_team"].team_id
    response = api.get(f"{URL}?team={other}")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    # A team the caller is only a viewer of: refused.
    viewed = member("owner").current_team
    MembershipFactory(team=viewed, user=owner, role="viewer")
    response = api.get(f"{URL}?team={viewed.pk}")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    # Without `team`: only the teams the caller manages.
    assert len(_ids(api.get(URL))) == 4


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_members_who_do_not_manage_are_refused(owner, events, role) -> None:
    user = member(role, team=owner.current_team)
    api = api_client_for(user)
    for url in (URL, f"{URL}?team={owner.current_team.pk}"):
        response = api.get(url)
        assert (response.status_code, response.json()["error"]["code"]) == (
            403,
            "permission_denied",
        )


def test_an_admin_reads_the_log(events) -> None:
    assert len(_ids(api_client_for(events["admin"]).get(URL))) == 4


def test_a_team_token_reads_only_its_team(owner, events, record) -> None:
    second = member("owner").current_team
    MembershipFactory(team=second, user=owner, role="admin")
    in_second = record(owner, second, "team.renamed")
    everywhere = api_client_for(owner)
    assert in_second.pk in _ids(everywhere.get(URL))
    limited = api_client_for(owner, team=owner.current_team)
    assert in_second.pk not in _ids(limited.get(URL))
    response = limited.get(f"{URL}?team={second.pk}")
    assert response.status_code == 404


def test_anonymous_is_refused() -> None:
    assert APIClient().get(URL).status_code in (401, 403)


def test_query_count_does_not_grow_with_rows(api, owner, record, django_assert_num_queries):
    team = owner.current_team
    api.get(URL)  # warm-up: the token's last-used write
    for _ in range(3):
        record(owner, team, "token.created")
    with django_assert_num_queries(4):  # token, managed teams, count, page
        few = api.get(URL)
    for _ in range(20):
        record(owner, team, "token.created")
    with django_assert_num_queries(4):
        many = api.get(URL)
    assert (few.json()["count"], many.json()["count"]) == (3, 23)
