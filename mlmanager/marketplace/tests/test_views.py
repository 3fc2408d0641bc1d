"""The marketplace pages: catalogue, listing (try it, buy, copy), publish, my listings."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from mlmanager.billing.models import Operation
from mlmanager.core.tests.factories import member
from mlmanager.marketplace.models import Listing, ListingUse
from mlmanager.marketplace.tests.conftest import ROW


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_publish_from_the_model_page(seller: Any, model: Any) -> None:
    client = _client(seller)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert f'href="/marketplace/publish/{model.pk}/"' in page
    response = client.post(
        f"/marketplace/publish/{model.pk}/",
        {
            "kind": "prediction_api",
            "title": "Churn API",
            "description": "Who leaves next month",
            "category": "retail",
            "price": "10",
            "copy_price": "",
            "copy_update_price": "",
            "sample_input": json.dumps(ROW),
        },
    )
    listing = Listing.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/marketplace/{listing.pk}/"
    assert (listing.title, listing.price, listing.copy_price) == ("Churn API", 10, None)
    assert listing.sample_input == ROW


def test_viewers_get_no_publish_form(seller: Any, model: Any) -> None:
    viewer = member("viewer", seller.current_team)
    assert _client(viewer).get(f"/marketplace/publish/{model.pk}/").status_code == 403


def test_catalogue_search_and_filters(buyer: Any, publish: Any) -> None:
    publish(price=Decimal("1"), description="Churn risk", category=Listing.Category.RETAIL)
    client = _client(buyer)
    page = client.get("/marketplace/").content.decode()
    assert "Churn model" in page
    assert 'data-testid="nav-marketplace"' in page
    assert "Churn model" in client.get("/marketplace/?search=risk").content.decode()
    assert "Churn model" not in client.get("/marketplace/?search=weather").content.decode()
    assert "Churn model" not in client.get("/marketplace/?category=health").content.decode()
    assert "Churn model" in client.get("/marketplace/?kind=prediction_api").content.decode()
    # A value the filter refuses is ignored on the page, not an error.
    assert client.get("/marketplace/?kind=rental").status_code == 200


def test_the_listing_page_shows_schema_and_no_owner_data(
    seller: Any, buyer: Any, model: Any, publish: Any
) -> None:
    listing = publish(price=Decimal("1"), sample_input=ROW)
    page = _client(buyer).get(f"/marketplace/{listing.pk}/").content.decode()
    assert "tenure_months" in page and "churned" in page
    assert model.dataset.name not in page
    assert seller.email not in page
    assert f"/models/{model.pk}/" not in page


@pytest.mark.usefixtures("billing_on")
def test_try_it_predicts_one_row_and_charges(
    buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("10"), sample_input=ROW)
    fund(buyer.current_team, "1")
    response = _client(buyer).post(
        f"/marketplace/{listing.pk}/try/", {"row": json.dumps(ROW)}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="try-answer"' in text
    assert ListingUse.objects.get().rows == 1
    assert Operation.objects.get(kind=Operation.Kind.MARKETPLACE_PREDICTION)


@pytest.mark.usefixtures("billing_on")
def test_try_it_without_credit_says_so(buyer: Any, publish: Any, commission: Decimal) -> None:
    listing = publish(price=Decimal("10"), sample_input=ROW)
    response = _client(buyer).post(
        f"/marketplace/{listing.pk}/try/", {"row": json.dumps(ROW)}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert 'data-testid="try-error"' in response.content.decode()
    assert "Not enough credit" in response.content.decode()
    assert ListingUse.objects.count() == 0


@pytest.mark.usefixtures("billing_on")
def test_my_listings_show_usage_and_income(
    seller: Any, buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("10"), sample_input=ROW)
    fund(buyer.current_team, "1")
    client = _client(buyer)
    for _ in range(2):
        client.post(f"/marketplace/{listing.pk}/try/", {"row": json.dumps(ROW)})
    page = _client(seller).get("/marketplace/mine/").content.decode()
    # Two rows at 10 per 1 000 = 0.02, less 20 %: 0.016 credited.
    assert '<td data-testid="rows-predicted">2</td>' in page
    assert '<td data-testid="buyers">1</td>' in page
    assert '<td data-testid="income">0.016 USD</td>' in page


@pytest.mark.usefixtures("billing_on")
def test_buy_data_and_copy_from_the_page(
    buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    data = publish(kind=Listing.Kind.DATA_SOURCE, price=Decimal("3"))
    api = publish(price=Decimal("1"), copy_price=Decimal("2"))
    client = _client(buyer)
    refused = client.post(f"/marketplace/{data.pk}/buy_data/", follow=True)
    assert "Not enough credit" in refused.content.decode()
    fund(buyer.current_team, "5")
    bought = client.post(f"/marketplace/{data.pk}/buy_data/", follow=True).content.decode()
    assert 'data-testid="download-data"' in bought
    download = client.get(f"/marketplace/{data.pk}/data/")
    assert b"".join(download.streaming_content).decode().startswith('"customer_id","plan",')
    copied = client.post(f"/marketplace/{api.pk}/copy/")
    assert copied.status_code == 302
    assert copied["Location"].startswith("/models/")
    mine = client.get("/marketplace/mine/").content.decode()
    assert "Churn model" in mine


def test_unpublished_listing_pages_are_not_found(buyer: Any, seller: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"))
    owner_client = _client(seller)
    assert owner_client.post(f"/marketplace/{listing.pk}/toggle/").status_code == 302
    assert Listing.objects.get().is_published is False
    client = _client(buyer)
    assert client.get(f"/marketplace/{listing.pk}/").status_code == 404
    assert client.post(f"/marketplace/{listing.pk}/try/", {"row": "{}"}).status_code == 404
    assert owner_client.get(f"/marketplace/{listing.pk}/").status_code == 200
