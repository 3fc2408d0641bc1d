"""GET /api/v1/models/{id}/estimate/ and the estimate beside the model page's train button."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines import services
from mlmanager.machines.models import Machine
from mlmanager.machines.tests import conftest as machines_fixtures

pytestmark = pytest.mark.django_db

make_dataset = machines_fixtures.make_dataset  # a fixture: datasets made in memory


def _machine(owner: Any, dataset: Any, **kwargs: Any) -> Machine:
    kwargs.setdefault("time_budget_s", 600)
    return services.machine_create(
        caller=Caller.for_session(owner), dataset=dataset, outputs=["churned"], **kwargs
    )


def _estimate(user: Any, machine: Machine) -> Any:
    return api_client_for(user).get(f"/api/v1/models/{machine.pk}/estimate/")


def test_the_estimate_is_the_full_budget_at_the_models_price(
    owner, make_dataset, billing_on, fund
) -> None:
    fund(owner.current_team, "10")
    custom = _machine(owner, make_dataset(owner))  # no level: 0.05 per minute
    response = _estimate(owner, custom)
    assert response.status_code == 200
    assert response.json() == {"time_s": 600, "cost": "0.50", "balance_after": "9.50"}

    level_3 = _machine(owner, make_dataset(owner, name="Other"), level=3, time_budget_s=None)
    expected_cost = 0.06 * level_3.time_budget_s / 60  # the level's price
    body = _estimate(owner, level_3).json()
    assert body["time_s"] == level_3.time_budget_s
    assert float(body["cost"]) == pytest.approx(expected_cost)
    assert float(body["balance_after"]) == pytest.approx(10 - expected_cost)


def test_an_estimate_past_the_credit_shows_a_negative_balance(
    owner, make_dataset, billing_on
) -> None:
    machine = _machine(owner, make_dataset(owner))
    assert _estimate(owner, machine).json() == {
        "time_s": 600,
        "cost": "0.50",
        "balance_after": "-0.50",
    }


def test_billing_off_costs_nothing_and_leaves_the_available_credit(
    owner, make_dataset, fund
) -> None:
    machine = _machine(owner, make_dataset(owner))
    assert _estimate(owner, machine).json() == {
        "time_s": 600,
        "cost": "0.00",
        "balance_after": "0.00",
    }
    fund(owner.current_team, "3")  # staff may fund accounts before switching billing on
    assert _estimate(owner, machine).json()["balance_after"] == "3.00"


def test_another_teams_model_is_not_found(owner, make_dataset, billing_on) -> None:
    machine = _machine(owner, make_dataset(owner))
    stranger = member("owner")
    response = _estimate(stranger, machine)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api_client_for(owner).get("/api/v1/models/999999/estimate/").status_code == 404
    viewer = member("viewer", team=owner.current_team)  # a viewer may read it
    assert _estimate(viewer, machine).status_code == 200


def test_the_train_button_shows_the_estimate_when_billing_is_on(
    owner, make_dataset, settings, fund
) -> None:
    machine = _machine(owner, make_dataset(owner))
    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="train-button"' in page
    assert "training-estimate" not in page  # billing off: nothing shown

    settings.MLMANAGER_BILLING = True
    fund(owner.current_team, "10")
    page = client.get(f"/models/{machine.pk}/").content.decode()
    assert "About 10 min, costs 0.50 USD, leaves 9.50 USD." in page
    assert "training-estimate-short" not in page
