"""Data source listings: the free sample, buying once, and the CSV download."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from mlmanager.billing.models import Account, Operation
from mlmanager.core.tests.factories import api_client_for
from mlmanager.marketplace.models import DataPurchase, Listing

LISTINGS = "/api/v1/marketplace/listings/"


@pytest.fixture
def data_listing(publish: Any) -> Listing:
    return publish(kind=Listing.Kind.DATA_SOURCE, price=Decimal("3"))


def _csv(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_sample_is_free_and_the_data_is_not(buyer: Any, data_listing: Listing) -> None:
    client = api_client_for(buyer)
    body = client.get(f"{LISTINGS}{data_listing.pk}/").json()
    assert body["sample_rows"]["columns"][:2] == ["customer_id", "plan"]
    assert len(body["sample_rows"]["rows"]) == 5
    refused = client.get(f"{LISTINGS}{data_listing.pk}/data/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_purchased"


@pytest.mark.usefixtures("billing_on")
def test_buy_once_then_download(
    seller: Any, buyer: Any, data_listing: Listing, fund: Any, commission: Decimal
) -> None:
    fund(buyer.current_team, "10")
    client = api_client_for(buyer)
    first = client.post(f"{LISTINGS}{data_listing.pk}/buy_data/")
    assert first.status_code == 201
    assert first.json()["price"] == "3.00"
    again = client.post(f"{LISTINGS}{data_listing.pk}/buy_data/")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Operation.objects.filter(kind=Operation.Kind.DATA_PURCHASE).count() == 1
    assert Account.objects.get(team=buyer.current_team).available == Decimal("7")
    assert Account.objects.get(team=seller.current_team).available == Decimal("2.4")

    download = client.get(f"{LISTINGS}{data_listing.pk}/data/")
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv"
    rows = _csv(download)
    assert rows[0] == [
        "customer_id",
        "plan",
        "monthly_fee",
        "tenure_months",
        "member",
        "signup",
        "spend",
        "churned",
    ]
    assert len(rows) == 301
    assert rows[1][0] == "C00000"


@pytest.mark.usefixtures("billing_on")
def test_buying_without_credit_is_a_402(
    buyer: Any, data_listing: Listing, fund: Any, commission: Decimal
) -> None:
    fund(buyer.current_team, "2.99")
    response = api_client_for(buyer).post(f"{LISTINGS}{data_listing.pk}/buy_data/")
    assert response.status_code == 402
    assert not DataPurchase.objects.exists()
    assert api_client_for(buyer).get(f"{LISTINGS}{data_listing.pk}/data/").status_code == 403


def test_a_prediction_listing_sells_no_data(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"))
    response = api_client_for(buyer).post(f"{LISTINGS}{listing.pk}/buy_data/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_a_data_source"
    data = publish(kind=Listing.Kind.DATA_SOURCE, price=Decimal("1"))
    response = api_client_for(buyer).post(
        f"{LISTINGS}{data.pk}/predict/", {"rows": []}, format="json"
    )
    assert response.status_code == 409
