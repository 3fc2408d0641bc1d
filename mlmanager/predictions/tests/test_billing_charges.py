"""Predictions pay per row with billing on (API, web form, batches): promotional credit first,
a retried request with the same Idempotency-Key charged once, a refused charge (402) leaving
no log entry; with billing off nothing is written and the predict path makes no new query."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mlmanager.accounts.caller import Caller
from mlmanager.billing.models import Account, DailyUsage, Operation
from mlmanager.billing.tests import conftest as billing_fixtures
from mlmanager.core.tests.factories import api_client_for
from mlmanager.jobs.models import Job
from mlmanager.predictions import batches
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.tests.test_api import ROW, assert_error, post, predict_url

billing_on = billing_fixtures.billing_on  # fixtures: billing switched on, teams funded
fund = billing_fixtures.fund

# The default price (migration 0002): 0.10 per 1 000 rows.
PER_ROW = Decimal("0.0001")


def _account(team: Any) -> Account:
    return Account.objects.get(team_id=team.pk)


@pytest.mark.django_db
def test_api_rows_are_charged_promotional_credit_first(
    api: Any, owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    fund(owner.current_team, "0.0002", promotional=True)
    fund(owner.current_team, "1")
    response = post(api, predict_url(binary_model), {"rows": [ROW] * 3})
    assert response.status_code == 200, response.content

    operation = Operation.objects.get(kind="prediction")
    assert operation.details["rows"] == 3
    assert operation.details["source"] == "api"
    assert operation.details["key"] == "predictions_1000_rows"
    assert operation.created_by_id == owner.pk
    team_side = sorted(
        (entry.bucket, entry.amount)
        for entry in operation.entries.filter(account__team=owner.current_team)
    )
    assert team_side == [("credits", -PER_ROW), ("promotional", -2 * PER_ROW)]
    account = _account(owner.current_team)
    assert (account.promotional_balance, account.balance) == (0, Decimal("1") - PER_ROW)
    assert Prediction.objects.count() == 3
    assert DailyUsage.objects.get(team=owner.current_team).predictions == 3


@pytest.mark.django_db
def test_a_retry_with_the_same_idempotency_key_is_charged_once(
    api: Any, owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    fund(owner.current_team, "1")
    url = predict_url(binary_model)
    for _attempt in range(2):
        response = api.post(
            url,
            data={"rows": [ROW] * 10},
            format="json",
            HTTP_IDEMPOTENCY_KEY="  order-17  ",
        )
        assert response.status_code == 200, response.content
    operation = Operation.objects.get(kind="prediction")
    assert operation.idempotency_key == "order-17"  # stripped
    assert _account(owner.current_team).balance == Decimal("1") - 10 * PER_ROW
    # Another key is another charge.
    api.post(url, data={"rows": [ROW]}, format="json", HTTP_IDEMPOTENCY_KEY="order-18")
    assert Operation.objects.filter(kind="prediction").count() == 2


@pytest.mark.django_db
def test_an_invalid_idempotency_key_is_a_400(
    api: Any, owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    fund(owner.current_team, "1")
    url = predict_url(binary_model)
    for key in ("k" * 201, "batch:1"):
        response = api.post(url, data={"rows": [ROW]}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert_error(response, 400, "invalid_idempotency_key")
    ok = api.post(url, data={"rows": [ROW]}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 200)
    assert ok.status_code == 200


@pytest.mark.django_db
def test_a_refused_charge_answers_402_and_logs_nothing(
    api: Any, owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    fund(owner.current_team, "0.0001")
    error = assert_error(
        post(api, predict_url(binary_model), {"rows": [ROW] * 2}), 402, "insufficient_credits"
    )
    assert error["details"] == {"needed": "0.0002", "available": "0.0001"}
    assert Prediction.objects.count() == 0
    assert not Operation.objects.filter(kind="prediction").exists()
    assert not DailyUsage.objects.exists()
    # The one row it can pay for is answered.
    assert post(api, predict_url(binary_model), {"rows": [ROW]}).status_code == 200
    assert _account(owner.current_team).balance == 0


@pytest.mark.django_db
def test_the_web_form_is_charged_and_a_refusal_shows_a_message(
    owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    from django.test import Client

    client = Client()
    client.force_login(owner)
    form = {"plan": "pro", "monthly_fee": "49.5", "tenure_months": "3", "signup": "2023-04-01"}
    refused = client.post(f"/models/{binary_model.pk}/predict/", form)
    assert refused.status_code == 402
    assert "Not enough credit" in refused.content.decode()
    assert Prediction.objects.count() == 0

    fund(owner.current_team, "1")
    answered = client.post(f"/models/{binary_model.pk}/predict/", form)
    assert answered.status_code == 200
    operation = Operation.objects.get(kind="prediction")
    assert (operation.details["rows"], operation.details["source"]) == (1, "ui")
    assert Prediction.objects.count() == 1


@pytest.mark.django_db
def test_billing_off_predicting_writes_no_money_and_adds_no_query(
    owner: Any, binary_model: Any
) -> None:
    from mlmanager.accounts.services import api_token_create

    _token, raw = api_token_create(caller=Caller.for_session(owner), name="fast path")
    client = api_client_for(owner)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    url = predict_url(binary_model)
    assert post(client, url, {"rows": [ROW]}).status_code == 200  # loads the version once
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            url, data={"rows": [ROW]}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1"
        )
    assert response.status_code == 200
    # As before billing existed (test_api's fast-path test): the token and model in one
    # query, then the log's INSERT. No quota, price, account or usage query.
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert [sql.split()[0] for sql in statements] == ["SELECT", "1"], statements
    assert (Operation.objects.count(), DailyUsage.objects.count()) == (0, 0)
    assert Account.objects.count() == 0


def test_a_dataset_batch_is_charged_by_its_rows_once_at_its_end(
    owner: Any, binary_model: Any, run_jobs: Any, billing_on: None, fund: Any
) -> None:
    from mlmanager.billing.models import Price

    if not Price.objects.filter(key="predictions_1000_rows").exists():  # flushed by a previous
        from datetime import timedelta  # transactional test

        from django.utils import timezone

        Price.objects.create(
            key="predictions_1000_rows",
            amount=Decimal("0.10"),
            valid_from=timezone.now() - timedelta(days=1),
        )
    fund(owner.current_team, "1")
    dataset = binary_model.dataset
    batch = batches.batch_create(
        machine=binary_model,
        version=binary_model.active_version,
        caller=Caller.for_session(owner),
        dataset=dataset,
    )
    run_jobs()

    batch.refresh_from_db()
    assert batch.job.status == Job.Status.SUCCEEDED, batch.job.error
    assert batch.row_count == dataset.row_count == 300
    operation = Operation.objects.get(kind="prediction")
    assert operation.idempotency_key == f"batch:{batch.pk}"
    assert (operation.details["rows"], operation.details["source"]) == (300, "batch")
    assert _account(owner.current_team).balance == Decimal("1") - 300 * PER_ROW
    assert DailyUsage.objects.get(team=owner.current_team).predictions == 300
    # A retried job (its worker died after the charge) charges once.
    batches.batch_charge(batch=batch, rows=300)
    assert Operation.objects.filter(kind="prediction").count() == 1


@pytest.mark.django_db
def test_a_dataset_batch_the_team_cannot_pay_for_is_refused_before_it_is_queued(
    owner: Any, binary_model: Any, billing_on: None, fund: Any
) -> None:
    fund(owner.current_team, "0.01")  # 300 rows cost 0.03
    response = api_client_for(owner).post(
        f"/api/v1/models/{binary_model.pk}/batch_predictions/",
        {"dataset": binary_model.dataset_id},
        format="json",
    )
    error = assert_error(response, 402, "insufficient_credits")
    assert error["details"] == {"needed": "0.03", "available": "0.01"}
    assert (BatchPrediction.objects.count(), Job.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_images_are_charged_one_row_each_and_a_refusal_keeps_no_image(
    api: Any, owner: Any, digits_model: Any, billing_on: None, fund: Any
) -> None:
    from mlmanager.core import storage
    from mlmanager.predictions.tests.images_helpers import digit
    from mlmanager.predictions.tests.test_image_predict import send

    zero, _label = digit(0)
    five, _label = digit(5)
    fund(owner.current_team, "0.0001")
    refused = send(api, digits_model, ("zero.png", zero), ("five.png", five))
    assert_error(refused, 402, "insufficient_credits")
    assert Prediction.objects.count() == 0
    kept = storage.local_path(f"{digits_model.storage_dir}/predictions")
    assert not kept.exists() or not [path for path in kept.rglob("*") if path.is_file()]

    fund(owner.current_team, "1")
    response = send(api, digits_model, ("zero.png", zero), ("five.png", five))
    assert response.status_code == 200, response.content
    operation = Operation.objects.get(kind="prediction")
    assert (operation.details["rows"], operation.details["source"]) == (2, "api")
    assert _account(owner.current_team).balance == Decimal("1.0001") - 2 * PER_ROW
    assert Prediction.objects.count() == 2


@pytest.mark.django_db
def test_with_billing_off_the_idempotency_key_is_ignored(api: Any, binary_model: Any) -> None:
    response = api.post(
        predict_url(binary_model),
        data={"rows": [ROW]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 300,
    )
    assert response.status_code == 200
