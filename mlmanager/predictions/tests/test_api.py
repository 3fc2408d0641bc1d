"""POST /api/v1/models/{id}/predict/: answers, every bad payload, token scoping; the log and
feedback endpoints."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_create, api_token_revoke
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.schema import MAX_ROWS

ROW = {
    "plan": "pro",
    "monthly_fee": 49.5,
    "tenure_months": 3,
    "member": True,
    "signup": "2023-04-01",
}


def predict_url(machine: Any, query: str = "") -> str:
    return f"/api/v1/models/{machine.pk}/predict/{query}"


def post(client: APIClient, url: str, body: Any) -> Any:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data=raw, content_type="application/json")


def assert_error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


@pytest.mark.django_db
def test_rows_get_labels_probabilities_ids_and_timings(api: APIClient, binary_model: Any):
    rows = [ROW, {"plan": "basic", "tenure_months": 50}, {}]  # missing inputs are allowed
    response = post(api, predict_url(binary_model), {"rows": rows})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == binary_model.pk and body["model_version"] == 1
    assert len(body["predictions"]) == 3
    for prediction in body["predictions"]:
        assert prediction["churned"] in ("yes", "no")
        probabilities = prediction["probabilities"]
        assert set(probabilities) == {"no", "yes"}
        assert abs(sum(probabilities.values()) - 1) < 1e-9
        assert max(probabilities, key=probabilities.get) == prediction["churned"]
    assert set(body["timing_ms"]) == {"parse", "model", "total"}
    assert 0 <= body["timing_ms"]["model"] <= body["timing_ms"]["total"]
    # A short tenure churns more than a long one: the model learnt something real.
    assert (
        body["predictions"][0]["probabilities"]["yes"]
        > body["predictions"][1]["probabilities"]["yes"]
    )


@pytest.mark.django_db
def test_column_oriented_rows_answer_the_same(api: APIClient, binary_model: Any):
    rows = [ROW, {**ROW, "tenure_months": 40}]
    by_rows = post(api, predict_url(binary_model), {"rows": rows}).json()
    columns = {name: [row[name] for row in rows] for name in ROW}
    by_columns = post(api, predict_url(binary_model), {"columns": columns}).json()
    strip = lambda body: [{k: v for k, v in p.items() if k != "id"} for p in body["predictions"]]  # noqa: E731
    assert strip(by_rows) == strip(by_columns)


@pytest.mark.django_db
def test_every_prediction_is_logged_with_caller_version_and_latency(
    api: APIClient, owner: Any, binary_model: Any
):
    body = post(api, predict_url(binary_model), {"rows": [ROW, {"plan": "plus"}]}).json()
    ids = [prediction["id"] for prediction in body["predictions"]]
    logged = {str(p.pk): p for p in Prediction.objects.filter(machine=binary_model)}
    assert set(logged) == set(ids)
    first = logged[ids[0]]
    assert first.inputs == ROW and first.user_id == owner.pk and first.token_id is not None
    assert first.source == "api" and first.version_number == 1 and first.latency_ms > 0
    assert first.outputs["churned"]["value"] == body["predictions"][0]["churned"]
    listed = api.get(f"/api/v1/predictions/?model={binary_model.pk}").json()
    assert listed["count"] == 2
    assert {row["id"] for row in listed["results"]} == set(ids)


@pytest.mark.django_db
def test_feedback_is_recorded_filtered_and_counted_in_live_accuracy(
    api: APIClient, binary_model: Any
):
    from mlmanager.predictions.selectors import live_accuracy

    body = post(api, predict_url(binary_model), {"rows": [ROW, ROW]}).json()
    first, second = body["predictions"]
    response = api.post(
        f"/api/v1/predictions/{first['id']}/feedback/", {"actual": first["churned"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["feedback"] == {"churned": first["churned"]}
    wrong = "no" if second["churned"] == "yes" else "yes"
    api.post(
        f"/api/v1/predictions/{second['id']}/feedback/",
        {"actual": {"churned": wrong}},
        format="json",
    )
    with_feedback = api.get("/api/v1/predictions/?has_feedback=true").json()
    assert with_feedback["count"] == 2
    binary_model.refresh_from_db()
    [accuracy] = live_accuracy(machine=binary_model)
    assert accuracy["count"] == 2 and accuracy["accuracy"] == 0.5
    bad = api.post(
        f"/api/v1/predictions/{first['id']}/feedback/", {"actual": {"spend": 3}}, format="json"
    )
    assert_error(bad, 400, "invalid_feedback")
    # A class the model does not know would add a class with one example to the retraining data.
    for unknown in ("maybe", True, "", 1):
        unknown_class = api.post(
            f"/api/v1/predictions/{first['id']}/feedback/", {"actual": unknown}, format="json"
        )
        error = assert_error(unknown_class, 400, "invalid_feedback")
        assert error["message"].endswith("one of the classes: no, yes."), error
    assert Prediction.objects.get(pk=first["id"]).feedback == {"churned": first["churned"]}
    assert_error(
        api.post("/api/v1/predictions/not-a-uuid/feedback/", {"actual": "yes"}, format="json"),
        404,
        "not_found",
    )


@pytest.mark.django_db
def test_a_version_can_be_chosen(api: APIClient, binary_model: Any, trained_binary: Any):
    from mlmanager.predictions.tests.conftest import install_version

    install_version(binary_model, trained_binary, number=2, activate=False)
    assert (
        post(api, predict_url(binary_model, "?version=2"), {"rows": [ROW]}).json()["model_version"]
        == 2
    )
    assert post(api, predict_url(binary_model), {"rows": [ROW]}).json()["model_version"] == 1
    assert_error(
        post(api, predict_url(binary_model, "?version=9"), {"rows": [ROW]}), 404, "not_found"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ('{"rows": [{"monthly_fee": NaN}]}', "invalid_json", "NaN"),
        ('{"rows": [{"monthly_fee": Infinity}]}', "invalid_json", "Infinity"),
        ('{"rows": [{"monthly_fee": -Infinity}]}', "invalid_json", "Infinity"),
        ('{"rows": [{"monthly_fee": 1e999}]}', "invalid_json", "Infinity"),
        ('{"rows": [{"plan": {"nested": 1}}]}', "wrong_type", "plan"),
        ('{"rows": [{"plan": ["a"]}]}', "wrong_type", "plan"),
        ('{"rows": [{"monthly_fee": "cheap"}]}', "wrong_type", "Row 0, field “monthly_fee”"),
        ('{"rows": [{}, {"signup": "yesterday"}]}', "wrong_type", "Row 1, field “signup”"),
        ('{"rows": [{"member": "maybe"}, {"tenure_months": true}]}', "wrong_type", "Row 1"),
        ('{"rows": [{"colour": "red", "plan": "pro"}]}', "unknown_fields", "“colour”"),
        ('{"rows": [{"churned": "yes"}]}', "unknown_fields", "“churned”"),
        ('{"rows": []}', "no_rows", "at least one"),
        ("{}", "no_rows", "neither “rows” nor “columns”. Send “rows” (a list of objects"),
        ('{"rows": [{"plan": "prem\\u0000ium"}]}', "invalid_text", "NUL"),
        ('{"rows": [{"pl\\u0000an": "pro"}]}', "invalid_text", "NUL"),
        ('{"columns": {"plan": ["pro", "\\u0000"]}}', "invalid_text", "NUL"),
        ('{"columns": {"\\u0000": [1]}}', "invalid_text", "NUL"),
        ('{"rows": {"plan": "pro"}}', "invalid", "list"),
        ('{"rows": [1, 2]}', "invalid", "Row 0"),
        ('{"columns": {"plan": ["a"], "tenure_months": [1, 2]}}', "invalid", "same number"),
        ('{"rows": [{}], "columns": {}}', "unknown_fields", ""),
        ('{"rows": [{}], "extra": 1}', "unknown_fields", "extra"),
        ("[]", "invalid", "JSON object"),
        ("{not json", "invalid_json", "not valid JSON"),
    ],
)
def test_bad_payloads_get_a_400_naming_the_problem(
    api: APIClient, binary_model: Any, body: str, code: str, words: str
):
    if code == "unknown_fields" and '"columns"' in body:
        code = "invalid"  # both rows and columns
    error = assert_error(post(api, predict_url(binary_model), body), 400, code)
    assert words in error["message"], error
    assert not Prediction.objects.exists()


@pytest.mark.django_db
def test_text_that_only_looks_like_a_nul_escape_is_answered(api: APIClient, binary_model: Any):
    # JSON "\\u0000" is a backslash and five characters, not a NUL.
    response = post(api, predict_url(binary_model), '{"rows": [{"plan": "a\\\\u0000b"}]}')
    assert response.status_code == 200, response.content
    assert Prediction.objects.get().inputs == {"plan": "a\\u0000b"}


@pytest.mark.django_db
def test_too_many_rows_and_too_large_a_body_are_refused(
    api: APIClient, binary_model: Any, settings: Any
):
    error = assert_error(
        post(api, predict_url(binary_model), {"rows": [{}] * (MAX_ROWS + 1)}), 400, "too_many_rows"
    )
    assert error["details"] == {"rows": MAX_ROWS + 1, "limit": MAX_ROWS}
    # 50 MB, over the default 20 MB limit: refused from its declared length, as JSON.
    big = b'{"rows": [{"plan": "' + b"x" * (50 * 2**20) + b'"}]}'
    assert_error(post(api, predict_url(binary_model), big), 413, "payload_too_large")
    assert not Prediction.objects.exists()


@pytest.mark.django_db
def test_an_untrained_unknown_or_other_teams_model_is_refused(
    api: APIClient, owner: Any, binary_model: Any, make_model: Any, trained_binary: Any
):
    from mlmanager.machines.models import Machine

    outsider = member("owner")
    theirs = make_model(outsider, trained_binary, name="Theirs")
    assert_error(post(api, predict_url(theirs), {"rows": [ROW]}), 404, "not_found")
    assert_error(post(api, "/api/v1/models/999999/predict/", {"rows": [ROW]}), 404, "not_found")
    Machine.objects.filter(pk=binary_model.pk).update(active_version=None)
    assert_error(post(api, predict_url(binary_model), {"rows": [ROW]}), 409, "not_trained")


@pytest.mark.django_db
def test_tokens_are_scoped_to_their_team_and_refused_once_revoked_or_expired(
    owner: Any, binary_model: Any, make_model: Any, trained_binary: Any
):
    from mlmanager.accounts.models import ApiToken, Team

    other_team = Team.objects.create(name="Second team")
    owner.memberships.create(team=other_team, role="owner")
    owner.current_team = other_team
    owner.save()
    other_model = make_model(owner, trained_binary, name="Second")
    # A token limited to team A sees team A's model and gets 404 for team B's, predictions too.
    team_a = api_client_for(owner, team=binary_model.team)
    assert post(team_a, predict_url(binary_model), {"rows": [ROW]}).status_code == 200
    assert_error(post(team_a, predict_url(other_model), {"rows": [ROW]}), 404, "not_found")
    unrestricted = api_client_for(owner)
    other_id = post(unrestricted, predict_url(other_model), {"rows": [ROW]}).json()["predictions"][
        0
    ]["id"]
    assert_error(
        team_a.post(f"/api/v1/predictions/{other_id}/feedback/", {"actual": "yes"}, format="json"),
        404,
        "not_found",
    )
    listed = team_a.get("/api/v1/predictions/").json()
    assert {row["model"] for row in listed["results"]} == {binary_model.pk}

    token, raw = api_token_create(caller=Caller.for_session(owner), name="short-lived")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert post(client, predict_url(binary_model), {"rows": [ROW]}).status_code == 200
    api_token_revoke(caller=Caller.for_session(owner), token=token)
    assert post(client, predict_url(binary_model), {"rows": [ROW]}).status_code == 401
    token, raw = api_token_create(caller=Caller.for_session(owner), name="expiring")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert post(client, predict_url(binary_model), {"rows": [ROW]}).status_code == 401


@pytest.mark.django_db
def test_the_predict_token_check_keeps_the_rules_of_every_other_endpoint(
    owner: Any, binary_model: Any
):
    """The predict path checks the token and the model in one query of its own
    (machines.selectors.predict_grant_for_token): the same rules as the rest of the API."""
    from mlmanager.accounts.models import ApiToken

    token, raw = api_token_create(caller=Caller.for_session(owner), name="fast path")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = predict_url(binary_model)
    assert post(client, url, {"rows": [ROW]}).status_code == 200  # loads the version once
    token.refresh_from_db()
    assert token.last_used_at is not None  # recorded, once per minute at most
    # A warm model: the token and model query, then (the log written in the request) one
    # INSERT; no query for the user, the model or the version.
    with CaptureQueriesContext(connection) as queries:
        answer = post(client, url, {"rows": [ROW]})
    assert answer.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert [sql.split()[0] for sql in statements if "SAVEPOINT" not in sql] == [
        "SELECT",
        "1",  # "1 times: INSERT …", how Django records one executemany
    ]
    assert sum("INSERT INTO" in sql for sql in statements) == 1
    logged = Prediction.objects.get(pk=answer.json()["predictions"][0]["id"])
    assert (logged.user_id, logged.token_id) == (owner.pk, token.pk)
    # A version chosen by number; the last-used time is written again once it is stale.
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=two_minutes_ago)
    assert post(client, url + "?version=1", {"rows": [ROW]}).json()["model_version"] == 1
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at > two_minutes_ago

    viewer = member("viewer", team=binary_model.team)
    assert post(api_client_for(viewer), url, {"rows": [ROW]}).status_code == 200
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert_error(post(client, url, {"rows": [ROW]}), 401, "authentication_failed")
    malformed = APIClient()
    malformed.credentials(HTTP_AUTHORIZATION="Bearer two words")
    assert_error(post(malformed, url, {"rows": [ROW]}), 401, "authentication_failed")
    assert ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).exists()


TOKEN_CASES = {
    # case: the status both paths answer
    "valid": 200,
    "expiring tomorrow": 200,
    "expired": 401,
    "revoked": 401,
    "user deactivated": 401,
    "no longer a member": 404,
    "limited to another team": 404,
    "unknown model": 404,
    "id past the integer range": 404,
    "id zero": 404,
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(TOKEN_CASES))
def test_the_predict_token_check_answers_as_every_other_endpoint(
    case: str, owner: Any, binary_model: Any
):
    """The predict path checks the token and the model in one query of its own
    (machines.selectors.predict_grant_for_token); the model's page in the API goes the usual way
    (BearerTokenAuthentication, access_team_object). Both must answer alike."""
    from mlmanager.accounts.models import ApiToken, Team

    team = Team.objects.create(name="Elsewhere") if case == "limited to another team" else None
    if team is not None:
        owner.memberships.create(team=team, role="owner")
    token, raw = api_token_create(caller=Caller.for_session(owner), name=case, team=team)
    model_id: Any = binary_model.pk
    now = timezone.now()
    if case == "expiring tomorrow":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=now + timedelta(days=1))
    elif case == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=now - timedelta(seconds=1))
    elif case == "revoked":
        api_token_revoke(caller=Caller.for_session(owner), token=token)
    elif case == "user deactivated":
        owner.is_active = False
        owner.save(update_fields=["is_active"])
    elif case == "no longer a member":
        owner.memberships.filter(team=binary_model.team).delete()
    elif case == "unknown model":
        model_id = binary_model.pk + 1000
    elif case == "id past the integer range":
        model_id = 2**64
    elif case == "id zero":
        model_id = 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    predicted = post(client, f"/api/v1/models/{model_id}/predict/", {"rows": [ROW]})
    shown = client.get(f"/api/v1/models/{model_id}/")
    expected = TOKEN_CASES[case]
    assert (predicted.status_code, shown.status_code) == (expected, expected), predicted.content
    if expected != 200:
        assert predicted.json()["error"]["code"] == shown.json()["error"]["code"]


@pytest.mark.django_db
def test_prediction_ids_are_unique_time_ordered_uuids(api: APIClient, binary_model: Any):
    """Version 7 (RFC 9562): the log's primary key grows at the end of its index."""
    first = post(api, predict_url(binary_model), {"rows": [ROW] * 50}).json()["predictions"]
    time.sleep(0.002)
    second = post(api, predict_url(binary_model), {"rows": [ROW]}).json()["predictions"]
    ids = [uuid.UUID(item["id"]) for item in first + second]
    assert len(set(ids)) == 51
    assert {(value.version, value.variant) for value in ids} == {(7, uuid.RFC_4122)}
    milliseconds = [value.int >> 80 for value in ids]
    assert milliseconds[-1] > max(milliseconds[:-1])
    assert abs(milliseconds[-1] - time.time() * 1000) < 60_000
    assert Prediction.objects.filter(pk__in=ids).count() == 51


@pytest.mark.django_db
def test_a_signed_in_session_predicts_through_the_api_too(
    client: Any, owner: Any, binary_model: Any
):
    client.force_login(owner)
    answer = client.post(
        predict_url(binary_model), data=json.dumps({"rows": [ROW]}), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    logged = Prediction.objects.get(pk=answer.json()["predictions"][0]["id"])
    assert (logged.user_id, logged.token_id) == (owner.pk, None)
    outsider = member("owner")
    client.force_login(outsider)
    assert_error(
        client.post(predict_url(binary_model), data="{}", content_type="application/json"),
        404,
        "not_found",
    )


@pytest.mark.django_db
def test_two_outputs_answer_each_with_probabilities_by_output(
    api: APIClient, owner: Any, make_model: Any, trained_two_outputs: Any
):
    machine = make_model(owner, trained_two_outputs)
    [prediction] = post(api, predict_url(machine), {"rows": [ROW]}).json()["predictions"]
    assert prediction["churned"] in ("yes", "no")
    assert isinstance(prediction["spend"], float)
    assert set(prediction["probabilities"]) == {"churned"}
    assert set(prediction["probabilities"]["churned"]) == {"no", "yes"}
