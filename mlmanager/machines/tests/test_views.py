from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import member
from mlmanager.machines import services
from mlmanager.machines.models import Machine
from mlmanager.machines.tests.conftest import BUDGET_S, make_version


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _review_post(dataset, **fields) -> dict:
    return {
        "dataset": dataset.pk,
        "outputs": ["churned", "spend"],
        "name": "Churn and spend",
        "description": "",
        "inputs": ["plan", "monthly_fee", "tenure_months"],
        "task_0": "binary",
        "metric_0": "",
        "task_1": "regression",
        "metric_1": "mae",
        "level": "custom",
        "time_budget_s": str(BUDGET_S),
        **fields,
    }


def test_create_in_two_steps_train_and_see_results(
    browser, owner, make_dataset, run_jobs, fake_engine
) -> None:
    dataset = make_dataset(owner)
    dataset_page = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'href="/models/new/?dataset={dataset.pk}"' in dataset_page

    step_one = browser.get(f"/models/new/?dataset={dataset.pk}").content.decode()
    assert "Step 1 of 2" in step_one
    assert 'value="churned" checked' in step_one.replace(' id="id_outputs_0"', "")
    assert 'value="customer_id"' not in step_one  # identifiers cannot be predicted

    step_two = browser.get(
        f"/models/new/?dataset={dataset.pk}&outputs=churned&outputs=spend"
    ).content.decode()
    assert "Step 2 of 2" in step_two
    assert "an identifier: a different value in nearly every row" in step_two
    assert "the same value in every row" in step_two
    assert 'name="inputs" value="plan"' in step_two
    assert '<option value="binary" selected>' in step_two
    assert '<option value="regression" selected>' in step_two

    # "Create without training", the wizard's secondary button (its primary trains too).
    created = browser.post("/models/new/", _review_post(dataset, then="create"))
    machine = Machine.objects.get()
    assert created.status_code == 302
    assert created["Location"] == f"/models/{machine.pk}/"
    assert machine.outputs == [
        {"name": "churned", "task": "binary", "metric": "roc_auc"},
        {"name": "spend", "task": "regression", "metric": "mae"},
    ]
    assert (machine.level, machine.time_budget_s) == (None, BUDGET_S)

    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert 'data-testid="train-button"' in page
    assert "mlmanager:poll" not in page
    assert browser.post(f"/models/{machine.pk}/train/").status_code == 302

    training = browser.get(f"/models/{machine.pk}/").content.decode()
    assert "mlmanager:poll from:body" in training  # refreshed while the run is active
    assert 'data-testid="active-run"' in training
    assert 'data-testid="cancel-button"' in training
    assert "Waiting for a worker…" in training
    assert 'data-testid="train-button"' not in training

    run_jobs()

    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert "every 1s" not in page
    assert "Active version: v1" in page
    assert page.count('data-testid="version-output"') == 2
    assert 'data-testid="confusion-matrix"' in page
    assert 'data-testid="scatter"' in page
    assert page.count("<circle ") == 6  # 3 holdout rows, in the scatter and the residuals
    assert 'data-testid="residuals"' in page
    assert page.count('data-testid="importance"') == 2
    assert 'data-testid="leaderboard"' in page
    assert "Measured on 12 rows kept aside from training." in page
    assert "Train again" in page

    listing = browser.get("/models/").content.decode()
    assert "Churn and spend" in listing
    assert '<span class="badge ready" data-testid="model-status">Ready</span>' in listing


def test_review_errors_stay_on_the_form(browser, owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    response = browser.post("/models/new/", _review_post(dataset, time_budget_s="0"))
    assert response.status_code == 200
    assert "too short; training needs at least 10 s" in response.content.decode()
    assert not Machine.objects.exists()
    step_one = browser.get(f"/models/new/?dataset={dataset.pk}&outputs=notes")
    assert step_one.status_code == 200
    assert "Select a valid choice" in step_one.content.decode()


@pytest.mark.django_db
def test_rollback_edit_and_delete(browser, owner, make_dataset) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"], level=1
    )
    make_version(machine, number=1, activate=False)
    make_version(machine, number=2)
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert "Roll back to this" in page
    response = browser.post(f"/models/{machine.pk}/versions/1/activate/")
    assert response.status_code == 302
    machine.refresh_from_db()
    assert machine.active_version.number == 1
    assert "Version 1 is now active." in browser.get(f"/models/{machine.pk}/").content.decode()

    browser.post(f"/models/{machine.pk}/edit/", {"name": "Renamed", "level": "1"})
    machine.refresh_from_db()
    assert machine.name == "Renamed"
    browser.post(f"/models/{machine.pk}/edit/", {"name": "Renamed", "level": "custom"})
    assert "too short" in browser.get(f"/models/{machine.pk}/").content.decode()
    machine.refresh_from_db()
    assert (machine.level, machine.time_budget_s) == (1, 60)

    response = browser.post(f"/models/{machine.pk}/delete/")
    assert response["Location"] == "/models/"
    assert not Machine.objects.exists()


@pytest.mark.django_db
def test_second_start_from_the_page_says_why(browser, owner, make_dataset) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=make_dataset(owner), outputs=["churned"]
    )
    browser.post(f"/models/{machine.pk}/train/")
    # The page hides the button while training; a second tab might still post.
    response = browser.post(f"/models/{machine.pk}/train/", follow=True)
    assert "This model is already training." in response.content.decode()
    assert machine.runs.count() == 1


@pytest.mark.django_db
def test_viewer_sees_no_actions(owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    machine = services.machine_create(
        caller=Caller.for_session(owner), dataset=dataset, outputs=["churned"]
    )
    make_version(machine)
    viewer = Client()
    viewer.force_login(member("viewer", team=owner.current_team))
    assert "Train a model" not in viewer.get(f"/datasets/{dataset.pk}/").content.decode()
    page = viewer.get(f"/models/{machine.pk}/").content.decode()
    assert "Active version: v1" in page
    assert 'data-testid="train-button"' not in page
    assert "Rename, budget or delete" not in page
    assert viewer.post(f"/models/{machine.pk}/train/").status_code == 403
    assert viewer.get(f"/models/new/?dataset={dataset.pk}").status_code == 403


@pytest.mark.django_db
def test_names_are_escaped(browser, owner, make_dataset) -> None:
    machine = services.machine_create(
        caller=Caller.for_session(owner),
        dataset=make_dataset(owner),
        outputs=["churned"],
        name="<script>x</script>",
    )
    for url in (f"/models/{machine.pk}/", "/models/"):
        html = browser.get(url).content.decode()
        assert "<script>x</script>" not in html
        assert "&lt;script&gt;x&lt;/script&gt;" in html


@pytest.mark.django_db
def test_pages_need_login() -> None:
    response = Client().get("/models/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
