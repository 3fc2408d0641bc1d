"""Pointing a model at another dataset: every input and output column must be there with a
compatible type (400 `incompatible_dataset` otherwise); another team's dataset is not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.machines.models import Machine, machine_storage_dir
from mlmanager.machines.tests.conftest import churn_frame


def _machine(owner: Any, dataset: Dataset) -> Machine:
    return Machine.objects.create(
        team=dataset.team,
        created_by=owner,
        name="Churn model",
        dataset=dataset,
        inputs=["plan", "monthly_fee", "tenure_months"],
        outputs=[{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        level=1,
        time_budget_s=60,
        storage_dir=machine_storage_dir(dataset.team_id),
    )


def _patch(api: Any, machine: Machine, dataset_id: int) -> Any:
    return api.patch(f"/api/v1/models/{machine.pk}/", {"dataset": dataset_id}, format="json")


def test_a_compatible_dataset_is_taken_and_audited(
    api: Any, owner: Any, make_dataset: Callable[..., Dataset]
) -> None:
    machine = _machine(owner, make_dataset(owner))
    before = machine.dataset_id
    other = make_dataset(owner, churn_frame(rows=150, seed=3), name="Churn 2027")

    response = _patch(api, machine, other.pk)

    assert response.status_code == 200, response.json()
    assert response.json()["dataset"] == other.pk
    assert Machine.objects.get(pk=machine.pk).dataset_id == other.pk
    event = AuditEvent.objects.get(action="model.dataset_changed")
    assert (event.target_id, event.changes) == (
        machine.pk,
        {"dataset": {"before": before, "after": other.pk}},
    )


def test_missing_and_mistyped_columns_are_refused(
    api: Any, owner: Any, make_dataset: Callable[..., Dataset]
) -> None:
    machine = _machine(owner, make_dataset(owner))
    data = churn_frame().drop(columns=["tenure_months"])
    data["plan"] = [index % 7 * 1.5 for index in range(len(data))]
    other = make_dataset(owner, data, name="Other")

    response = _patch(api, machine, other.pk)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "incompatible_dataset",
        "message": "This dataset does not fit the model (missing columns: tenure_months; "
        "columns of another type: plan).",
        "details": {
            "missing_columns": ["tenure_months"],
            "mistyped_columns": [{"name": "plan", "expected": "categorical", "found": "numeric"}],
        },
    }
    assert Machine.objects.get(pk=machine.pk).dataset_id == machine.dataset_id
    assert not AuditEvent.objects.filter(action="model.dataset_changed").exists()


def test_another_teams_dataset_is_not_found(
    api: Any, owner: Any, make_dataset: Callable[..., Dataset]
) -> None:
    machine = _machine(owner, make_dataset(owner))
    stranger = member()
    theirs = make_dataset(stranger, name="Theirs")

    response = _patch(api, machine, theirs.pk)

    assert response.status_code == 404
    assert Machine.objects.get(pk=machine.pk).dataset_id == machine.dataset_id


def test_a_dataset_not_ready_is_refused(
    api: Any, owner: Any, make_dataset: Callable[..., Dataset]
) -> None:
    machine = _machine(owner, make_dataset(owner))
    other = make_dataset(owner, name="Later")
    Dataset.objects.filter(pk=other.pk).update(status=Dataset.Status.PROCESSING)

    response = _patch(api, machine, other.pk)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "dataset_not_ready")


def test_model_page_offers_the_datasets_that_fit_and_changes_it(
    client: Any, owner: Any, make_dataset: Callable[..., Dataset]
) -> None:
    machine = _machine(owner, make_dataset(owner))
    fits = make_dataset(owner, churn_frame(rows=120, seed=2), name="Fits")
    lacking = make_dataset(owner, churn_frame().drop(columns=["plan"]), name="Lacking")
    client.force_login(owner)

    form = client.get(f"/models/{machine.pk}/dataset/").content.decode()

    assert f'<option value="{fits.pk}">Fits (#{fits.pk})</option>' in form
    assert f'<option value="{lacking.pk}" disabled>Lacking (#{lacking.pk}) — missing: plan' in form

    refused = client.post(
        f"/models/{machine.pk}/dataset/change/", {"dataset": lacking.pk}, follow=True
    )
    assert "This dataset does not fit the model (missing columns: plan)." in (
        refused.content.decode()
    )
    response = client.post(f"/models/{machine.pk}/dataset/change/", {"dataset": fits.pk})
    assert response.status_code == 302
    assert Machine.objects.get(pk=machine.pk).dataset_id == fits.pk
    theirs = make_dataset(member(), name="Theirs")
    stranger = client.post(f"/models/{machine.pk}/dataset/change/", {"dataset": theirs.pk})
    assert stranger.status_code == 404
