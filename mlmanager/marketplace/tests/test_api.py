"""The marketplace API: publish, the catalogue, and predict with the money it moves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mlmanager.accounts.models import Membership
from mlmanager.billing.models import Account, LedgerEntry, Operation
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.marketplace.models import Listing, ListingUse
from mlmanager.marketplace.tests.conftest import ROW
from mlmanager.predictions.models import Prediction

LISTINGS = "/api/v1/marketplace/listings/"


def _balance(team: Any) -> Decimal:
    account = Account.objects.filter(team=team).first()
    return account.balance + account.promotional_balance if account else Decimal(0)


def test_publish_and_read_a_listing(seller: Any, model: Any, buyer: Any) -> None:
    response = api_client_for(seller).post(
        LISTINGS,
        {
            "model": model.pk,
            "kind": "prediction_api",
            "price": "2.50",
            "description": "Churn risk",
            "category": "retail",
            "sample_input": ROW,
            "copy_price": "100",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["price"] == "2.50"
    assert body["copy_price"] == "100.00"
    assert body["copy_update_price"] == "0.00"
    assert body["seller"] == seller.current_team.name
    assert body["is_own"] is True
    assert body["schema"] == {
        "inputs": [
            {"name": "plan", "type": "categorical"},
            {"name": "monthly_fee", "type": "numeric"},
            {"name": "tenure_months", "type": "integer"},
            {"name": "member", "type": "boolean"},
            {"name": "signup", "type": "datetime"},
        ],
        "outputs": [{"name": "churned", "task": "binary"}],
    }

    seen = api_client_for(buyer).get(f"{LISTINGS}{body['id']}/").json()
    assert seen["is_own"] is False
    assert "dataset" not in seen and "team" not in seen
    listed = api_client_for(buyer).get(LISTINGS).json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]


def test_a_model_is_listed_once_per_kind(seller: Any, model: Any) -> None:
    client = api_client_for(seller)
    payload = {"model": model.pk, "kind": "prediction_api", "price": "1"}
    assert client.post(LISTINGS, payload, format="json").status_code == 201
    again = client.post(LISTINGS, payload, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_listed"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"kind": "prediction_api", "price": "-1"}, "invalid_amount"),
        ({"kind": "prediction_api", "price": "0.0000001"}, "invalid_amount"),
        ({"kind": "prediction_api", "price": "abc"}, "invalid_amount"),
        ({"kind": "rental", "price": "1"}, "invalid"),
        ({"kind": "prediction_api", "price": "1", "sample_input": {"x": 1}}, "unknown_column"),
        ({"kind": "prediction_api", "price": "1", "sample_input": {"plan": [1]}}, "invalid"),
    ],
)
def test_bad_input_is_a_400(seller: Any, model: Any, payload: dict, code: str) -> None:
    response = api_client_for(seller).post(LISTINGS, {"model": model.pk, **payload}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code


def test_viewers_cannot_publish(seller: Any, model: Any) -> None:
    viewer = member("viewer", seller.current_team)
    response = api_client_for(viewer).post(
        LISTINGS, {"model": model.pk, "kind": "prediction_api", "price": "1"}, format="json"
    )
    assert response.status_code == 403


def test_a_listing_of_team_a_cannot_name_team_b_model(seller: Any, model: Any, buyer: Any) -> None:
    # The buyer's team cannot list the seller's model (not found, as any other team's id)...
    response = api_client_for(buyer).post(
        LISTINGS, {"model": model.pk, "kind": "prediction_api", "price": "1"}, format="json"
    )
    assert response.status_code == 404
    # ...and a member of both cannot file the model under the other team.
    member_of_both = member("owner", buyer.current_team)
    Membership.objects.create(team=seller.current_team, user=member_of_both, role="owner")
    response = api_client_for(member_of_both).post(
        LISTINGS,
        {
            "model": model.pk,
            "kind": "prediction_api",
            "price": "1",
            "team": buyer.current_team.pk,
        },
        format="json",
    )
    assert response.status_code == 404
    # A token limited to the buyer's team does not reach the seller's model at all.
    limited = api_client_for(member_of_both, team=buyer.current_team)
    response = limited.post(
        LISTINGS, {"model": model.pk, "kind": "prediction_api", "price": "1"}, format="json"
    )
    assert response.status_code == 404
    assert Listing.objects.count() == 0


def test_unpublished_listings_and_the_owner_team_stay_hidden(
    seller: Any, model: Any, buyer: Any, publish: Any
) -> None:
    listing = publish(price=Decimal("1"))
    client = api_client_for(buyer)
    patch = api_client_for(seller).patch(
        f"{LISTINGS}{listing.pk}/", {"is_published": False}, format="json"
    )
    assert patch.status_code == 200
    assert patch.json()["is_published"] is False
    assert client.get(LISTINGS).json()["count"] == 0
    for url in ("", "predict/", "buy_data/", "data/", "copy/", "push_update/"):
        method = client.get if url in ("", "data/") else client.post
        response = method(f"{LISTINGS}{listing.pk}/{url}", {"rows": [ROW]}, format="json")
        assert response.status_code == 404, url
    # The seller still sees it among their own.
    mine = api_client_for(seller).get(LISTINGS, {"mine": "true"}).json()
    assert [item["id"] for item in mine["results"]] == [listing.pk]


def test_a_published_listing_opens_nothing_else_of_the_owner(
    seller: Any, model: Any, buyer: Any, publish: Any
) -> None:
    publish(price=Decimal("1"))
    publish(kind=Listing.Kind.DATA_SOURCE, price=Decimal("1"))
    client = api_client_for(buyer)
    for url in (
        f"/api/v1/models/{model.pk}/",
        f"/api/v1/models/{model.pk}/versions/",
        f"/api/v1/datasets/{model.dataset_id}/",
        f"/api/v1/datasets/{model.dataset_id}/preview/",
        f"/api/v1/teams/{seller.current_team.pk}/members/",
    ):
        assert client.get(url).status_code == 404, url
    predict = client.post(f"/api/v1/models/{model.pk}/predict/", {"rows": [ROW]}, format="json")
    assert predict.status_code == 404
    # Other edits of the listing belong to its team.
    listing = Listing.objects.first()
    response = client.patch(f"{LISTINGS}{listing.pk}/", {"price": "0"}, format="json")
    assert response.status_code == 404
    assert client.post(f"{LISTINGS}{listing.pk}/push_update/").status_code == 404


@pytest.mark.usefixtures("billing_on")
def test_predict_charges_the_buyer_and_pays_the_owner(
    seller: Any, buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("10"))  # per 1 000 rows
    fund(buyer.current_team, "1")
    response = api_client_for(buyer).post(
        f"{LISTINGS}{listing.pk}/predict/", {"rows": [ROW, ROW, ROW]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["predictions"]) == 3
    assert body["predictions"][0]["churned"] in ("yes", "no")
    assert set(body) == {"model", "model_version", "predictions", "warnings", "timing_ms"}

    # 3 rows at 10 per 1 000: 0.03, of which 20 % (0.006) to the platform.
    [operation] = Operation.objects.filter(kind=Operation.Kind.MARKETPLACE_PREDICTION)
    assert operation.team_id == buyer.current_team.pk
    entries = {
        (entry.account.kind, entry.account.team_id): entry.amount
        for entry in operation.entries.select_related("account")
    }
    assert entries == {
        ("team", buyer.current_team.pk): Decimal("-0.03"),
        ("team", seller.current_team.pk): Decimal("0.024"),
        ("platform", None): Decimal("0.006"),
    }
    # Summed in Python: SQLite sums decimals as floats.
    assert sum(e.amount for e in LedgerEntry.objects.filter(operation=operation)) == 0
    assert _balance(buyer.current_team) == Decimal("0.97")
    assert _balance(seller.current_team) == Decimal("0.024")
    # No platform prediction charge on top (the owner pays nothing for the buyer's rows).
    assert not Operation.objects.filter(kind=Operation.Kind.PREDICTION).exists()
    [use] = ListingUse.objects.all()
    assert (use.rows, use.amount, use.operation_id) == (3, Decimal("0.03"), operation.pk)


@pytest.mark.usefixtures("billing_on")
def test_predict_without_credit_is_a_402_with_no_answer(
    seller: Any, buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("10"))
    fund(buyer.current_team, "0.02")  # 3 rows cost 0.03
    response = api_client_for(buyer).post(
        f"{LISTINGS}{listing.pk}/predict/", {"rows": [ROW, ROW, ROW]}, format="json"
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["details"] == {"needed": "0.03", "available": "0.02"}
    assert "predictions" not in response.json()
    assert not Operation.objects.filter(kind=Operation.Kind.MARKETPLACE_PREDICTION).exists()
    assert ListingUse.objects.count() == 0
    assert _balance(buyer.current_team) == Decimal("0.02")
    assert Prediction.objects.count() == 0


@pytest.mark.usefixtures("billing_on")
def test_a_retried_predict_is_charged_once(
    seller: Any, buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("10"))
    fund(buyer.current_team, "1")
    client = api_client_for(buyer)
    url = f"{LISTINGS}{listing.pk}/predict/"
    for _attempt in range(2):
        response = client.post(
            url, {"rows": [ROW, ROW]}, format="json", HTTP_IDEMPOTENCY_KEY="order-17"
        )
        assert response.status_code == 200
    assert Operation.objects.filter(kind=Operation.Kind.MARKETPLACE_PREDICTION).count() == 1
    assert _balance(buyer.current_team) == Decimal("0.98")
    assert ListingUse.objects.get().rows == 2
    # The same key for a different charge is a conflict, not a second charge.
    other = client.post(url, {"rows": [ROW]}, format="json", HTTP_IDEMPOTENCY_KEY="order-17")
    assert other.status_code == 409
    assert _balance(buyer.current_team) == Decimal("0.98")


@pytest.mark.usefixtures("billing_on")
def test_the_owner_team_predicts_free(seller: Any, publish: Any, commission: Decimal) -> None:
    listing = publish(price=Decimal("10"))
    response = api_client_for(seller).post(
        f"{LISTINGS}{listing.pk}/predict/", {"rows": [ROW]}, format="json"
    )
    assert response.status_code == 200
    assert not Operation.objects.exists()
    assert ListingUse.objects.get().amount == Decimal(0)


def test_with_billing_off_nothing_is_charged(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("10"))
    response = api_client_for(buyer).post(
        f"{LISTINGS}{listing.pk}/predict/", {"rows": [ROW]}, format="json"
    )
    assert response.status_code == 200
    assert not Operation.objects.exists()
    assert not Account.objects.exists()
    assert ListingUse.objects.get().rows == 1


def test_predict_answers_bad_rows_with_400(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("10"))
    client = api_client_for(buyer)
    url = f"{LISTINGS}{listing.pk}/predict/"
    assert client.post(url, {"rows": "x"}, format="json").status_code == 400
    assert client.post(url, {"rows": [{"plan": {"a": 1}}]}, format="json").status_code == 400
    assert ListingUse.objects.count() == 0


def test_the_buying_team_is_the_callers_or_named(seller: Any, buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("10"))
    client = api_client_for(buyer)
    url = f"{LISTINGS}{listing.pk}/predict/"
    # A team the buyer is not a member of cannot be made to pay.
    response = client.post(f"{url}?team={seller.current_team.pk}", {"rows": [ROW]}, format="json")
    assert response.status_code == 404
    response = client.post(f"{url}?team={buyer.current_team.pk}", {"rows": [ROW]}, format="json")
    assert response.status_code == 200
    assert ListingUse.objects.get().buyer_id == buyer.current_team.pk


def test_the_catalogue_reads_in_a_constant_number_of_queries(
    buyer: Any, publish: Any, django_assert_num_queries: Any
) -> None:
    client = api_client_for(buyer)
    publish(price=Decimal("1"))
    client.get(LISTINGS)  # the token's first use is written once
    with CaptureQueriesContext(connection) as one:
        assert client.get(LISTINGS).json()["count"] == 1
    publish(kind=Listing.Kind.DATA_SOURCE, price=Decimal("1"))
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get(LISTINGS).json()["count"] == 2
