"""The experimenter: rules per output answer predictions while a model has no version."""

from __future__ import annotations

from typing import Any

import pytest

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.conftest import customers, install_version

pytestmark = pytest.mark.django_db

RULES = {
    "churned": "'yes' if tenure_months < 20 and plan != 'pro' else 'no'",
}


@pytest.fixture
def untrained(owner: Any, make_dataset: Any) -> Machine:
    dataset = make_dataset(owner, customers(), name="Customers")
    return Machine.objects.create(
        team=owner.current_team,
        created_by=owner,
        name="Not trained yet",
        dataset=dataset,
        inputs=["plan", "monthly_fee", "tenure_months", "member", "signup"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        time_budget_s=60,
        storage_dir=machine_storage_dir(owner.current_team_id),
    )


def _url(machine: Machine, tail: str = "experimenter/") -> str:
    return f"/api/v1/models/{machine.pk}/{tail}"


def _put(api: Any, machine: Machine, rules: Any) -> Any:
    return api.put(_url(machine), {"rules": rules}, format="json")


def test_set_read_and_remove_rules(api, owner, untrained) -> None:
    assert api.get(_url(untrained)).json()["rules"] == {}

    response = _put(api, untrained, RULES)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["rules"] == RULES
    assert body["answering"] is True
    assert body["updated_by"] == owner.email
    assert body["inputs"]["tenure_months"] == "tenure_months"
    assert api.get(_url(untrained)).json()["rules"] == RULES
    event = AuditEvent.objects.get(action="model.experimenter_set")
    assert event.changes == {"rules": {"before": {}, "after": RULES}}

    assert api.delete(_url(untrained)).status_code == 204
    assert api.get(_url(untrained)).json()["rules"] == {}
    assert api.delete(_url(untrained)).json()["error"]["code"] == "no_rules"
    assert AuditEvent.objects.filter(action="model.experimenter_deleted").count() == 1


def test_predict_by_rules_is_logged_as_such(api, untrained) -> None:
    _put(api, untrained, {"churned": "'yes' if tenure_months < 20 else 'no'"})
    rows = [{"tenure_months": 5, "plan": "basic"}, {"tenure_months": 30, "plan": "pro"}]

    response = api.post(_url(untrained, "predict/"), {"rows": rows}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["by_rules"], body["model_version"], body["warnings"]) == (True, 0, [])
    assert [p["churned"] for p in body["predictions"]] == ["yes", "no"]
    logged = Prediction.objects.filter(machine=untrained).order_by("created_at", "id")
    assert logged.count() == 2
    assert {(p.by_rules, p.version_id, p.version_number) for p in logged} == {(True, None, 0)}
    by_id = {str(p.id): p for p in logged}
    first = by_id[body["predictions"][0]["id"]]
    assert first.inputs == rows[0]
    assert first.outputs == {"churned": {"value": "yes"}}


def test_columns_payload_and_arithmetic(api, untrained) -> None:
    Machine.objects.filter(pk=untrained.pk).update(
        outputs=[
            {"name": "churned", "task": "binary", "metric": "roc_auc"},
            {"name": "spend", "task": "regression", "metric": "rmse"},
        ]
    )
    untrained.refresh_from_db()
    rules = {
        "churned": "tenure_months < 20",
        "spend": "round(max(monthly_fee, 10) * tenure_months / 2, 1) + abs(-1) - min(1, 2)",
    }
    assert _put(api, untrained, rules).status_code == 200
    response = api.post(
        _url(untrained, "predict/"),
        {"columns": {"monthly_fee": [5.0, 50.5], "tenure_months": [4, 30]}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    answers = [(p["churned"], p["spend"]) for p in response.json()["predictions"]]
    assert answers == [(True, 20.0), (False, 757.5)]


def test_no_rules_keeps_409(api, untrained) -> None:
    response = api.post(_url(untrained, "predict/"), {"rows": [{"plan": "x"}]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_trained")


def test_rules_are_ignored_once_a_version_exists(api, untrained, trained_binary) -> None:
    _put(api, untrained, {"churned": "'always'"})
    install_version(untrained, trained_binary)
    row = {"plan": "basic", "monthly_fee": 40.0, "tenure_months": 3, "member": True}
    response = api.post(_url(untrained, "predict/"), {"rows": [row]}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert "by_rules" not in body
    assert body["model_version"] == 1
    assert body["predictions"][0]["churned"] in {"yes", "no"}
    assert api.get(_url(untrained)).json()["answering"] is False
    assert Prediction.objects.get().by_rules is False


@pytest.mark.parametrize(
    ("row", "rule", "reason"),
    [
        ({"plan": "basic"}, "tenure_months * 2", "the input “tenure_months” is missing"),
        ({"tenure_months": 0}, "10 / tenure_months", "division by zero"),
        ({"plan": "basic"}, "plan - 1", "a value of the wrong type"),
        ({"tenure_months": 3000}, "tenure_months ** tenure_months", "The power is too large."),
        ({"plan": "basic"}, "plan * 1000000", "the text is too long"),
        ({"plan": "basic"}, "None", "it gave no number or text"),
    ],
)
def test_a_rule_that_fails_on_a_row_is_400(api, untrained, row, rule, reason) -> None:
    assert _put(api, untrained, {"churned": rule}).status_code == 200
    response = api.post(_url(untrained, "predict/"), {"rows": [row]}, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()["error"]
    assert body["code"] == "rule_failed"
    assert (body["details"]["row"], body["details"]["output"]) == (0, "churned")
    assert body["details"]["reason"].startswith(reason)
    assert not Prediction.objects.exists()


@pytest.mark.parametrize(
    ("rules", "output", "problem"),
    [
        ({"churned": "unknown_input + 1"}, "churned", "not an input"),
        ({"churned": "__import__('os').system('echo hi')"}, "churned", "Only these functions"),
        ({"churned": "__import__('os')"}, "churned", "Only these functions"),
        ({"churned": "plan.upper()"}, "churned", "Only these functions"),
        ({"churned": "().__class__"}, "churned", "not allowed"),
        ({"churned": "plan[0]"}, "churned", "not allowed"),
        ({"churned": "[1, 2]"}, "churned", "not allowed"),
        ({"churned": "lambda: 1"}, "churned", "not allowed"),
        ({"churned": "open('x')"}, "churned", "Only these functions"),
        ({"churned": "__builtins__"}, "churned", "not an input"),
        ({"churned": "max.__self__"}, "churned", "not allowed"),
        ({"churned": "min"}, "churned", "is a function"),
        ({"churned": "round(1, ndigits=2)"}, "churned", "Only these functions"),
        ({"churned": "f'{plan}'"}, "churned", "not allowed"),
        ({"churned": "1 +"}, "churned", "not a valid expression"),
        ({"churned": "1" * 1001}, "churned", "at most 1000"),
        ({"churned": ""}, "churned", "expression"),
        ({"churned": 5}, "churned", "expression"),
        ({"churned": "1", "nope": "1"}, "nope", "no output"),
        ({}, None, None),
    ],
)
def test_invalid_rules_are_refused(api, untrained, rules, output, problem) -> None:
    response = _put(api, untrained, rules)
    assert response.status_code == 400, response.json()
    body = response.json()["error"]
    assert body["code"] == "invalid_rule"
    if output is not None:
        assert body["details"]["output"] == output
        assert problem in body["details"]["problem"].replace(",", "").replace("\u202f", "")
    assert Machine.objects.get(pk=untrained.pk).experimenter_rules == {}


def test_every_output_needs_a_rule(api, untrained) -> None:
    Machine.objects.filter(pk=untrained.pk).update(
        outputs=[
            {"name": "churned", "task": "binary", "metric": "roc_auc"},
            {"name": "spend", "task": "regression", "metric": "rmse"},
        ]
    )
    response = _put(api, untrained, {"churned": "1"})
    assert (response.status_code, response.json()["error"]["details"]["output"]) == (400, "spend")


@pytest.mark.parametrize(
    "rule",
    ["9**9**9", "'a' * 10**9", "'ab' + 'c' * 99999 + 'd' * 99999", "'%099999999d' % 1"],
)
def test_hostile_expressions_fail_cleanly_at_predict(api, untrained, rule) -> None:
    assert _put(api, untrained, {"churned": rule}).status_code == 200
    response = api.post(_url(untrained, "predict/"), {"rows": [{"plan": "a"}]}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "rule_failed")


def test_other_teams_get_404_and_viewers_cannot_change(untrained, owner) -> None:
    stranger = api_client_for(member("owner"))
    for method in ("get", "put", "delete"):
        response = getattr(stranger, method)(_url(untrained), {"rules": RULES}, format="json")
        assert response.status_code == 404, method
    response = stranger.post(_url(untrained, "predict/"), {"rows": [{}]}, format="json")
    assert response.status_code == 404
    viewer = api_client_for(member("viewer", team=owner.current_team))
    assert viewer.get(_url(untrained)).status_code == 200
    assert _put(viewer, untrained, RULES).status_code == 403
    assert Machine.objects.get(pk=untrained.pk).experimenter_rules == {}


def test_model_page_form_sets_rules_and_predict_page_answers_by_rules(owner, untrained) -> None:
    from django.test import Client

    page = Client()
    page.force_login(owner)
    html = page.get(f"/models/{untrained.pk}/").content.decode()
    assert 'data-testid="experimenter-form"' in html
    assert 'data-testid="answering-by-rules"' not in html

    response = page.post(
        f"/models/{untrained.pk}/experimenter/",
        {"output": ["churned"], "rule": ["1 +"], "action": "save"},
        follow=True,
    )
    assert "cannot be used" in response.content.decode()
    assert Machine.objects.get(pk=untrained.pk).experimenter_rules == {}

    page.post(
        f"/models/{untrained.pk}/experimenter/",
        {"output": ["churned"], "rule": ["'yes' if tenure_months < 20 else 'no'"]},
    )
    assert Machine.objects.get(pk=untrained.pk).experimenter_rules == {
        "churned": "'yes' if tenure_months < 20 else 'no'"
    }
    html = page.get(f"/models/{untrained.pk}/").content.decode()
    assert 'data-testid="answering-by-rules"' in html

    form = page.get(f"/models/{untrained.pk}/predict/").content.decode()
    assert 'data-testid="by-rules"' in form
    answered = page.post(f"/models/{untrained.pk}/predict/", {"tenure_months": "4"})
    text = answered.content.decode()
    assert 'data-testid="predicted-value">yes<' in text
    assert "What moved this prediction most" not in text
    logged = Prediction.objects.get()
    assert (logged.by_rules, logged.source, logged.version_number) == (True, "ui", 0)

    failed = page.post(f"/models/{untrained.pk}/predict/", {"plan": "basic"}).content.decode()
    assert 'data-testid="form-error"' in failed
    assert "is missing" in failed

    page.post(f"/models/{untrained.pk}/experimenter/", {"action": "delete"})
    assert Machine.objects.get(pk=untrained.pk).experimenter_rules == {}


def test_viewer_sees_rules_without_the_form(owner, untrained, api) -> None:
    from django.test import Client

    _put(api, untrained, RULES)
    viewer = member("viewer", team=owner.current_team)
    page = Client()
    page.force_login(viewer)
    html = page.get(f"/models/{untrained.pk}/").content.decode()
    assert 'data-testid="experimenter-form"' not in html
    assert "plan != &#x27;pro&#x27;" in html
    assert (
        page.post(f"/models/{untrained.pk}/experimenter/", {"action": "delete"}).status_code == 403
    )
