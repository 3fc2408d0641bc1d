"""Paid copies of a listed model and the owner's pushed updates (machines.services.copies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from mlmanager.billing.models import Account, Operation
from mlmanager.core import storage
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.marketplace.models import ListingUse, ModelCopy
from mlmanager.marketplace.tests.conftest import ROW
from mlmanager.predictions.tests.conftest import install_version

LISTINGS = "/api/v1/marketplace/listings/"


def _available(team: Any) -> Decimal:
    return Account.objects.get(team=team).available


@pytest.mark.usefixtures("billing_on")
def test_a_copy_is_a_signed_model_of_the_buyer_team(
    seller: Any, buyer: Any, model: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("5"))
    fund(buyer.current_team, "6")
    client = api_client_for(buyer)
    response = client.post(f"{LISTINGS}{listing.pk}/copy/")
    assert response.status_code == 201, response.content
    body = response.json()
    copy = Machine.objects.get(pk=body["model"])
    assert body["version"] == 1
    assert copy.team_id == buyer.current_team.pk
    assert copy.dataset_id is None
    assert copy.name == model.name
    version = copy.active_version
    assert version.storage_dir.startswith(copy.storage_dir + "/copy-")
    [record] = version.outputs
    source_record = model.active_version.outputs[0]
    assert record["artifact"].startswith(version.storage_dir + "/")
    assert record["artifact_signature"] == source_record["artifact_signature"]
    assert (
        storage.local_path(record["artifact"]).read_bytes()
        == storage.local_path(source_record["artifact"]).read_bytes()
    )
    assert version.reproducibility == {"marketplace_listing": listing.pk, "title": listing.title}

    # Paid: 5, of which 1 to the platform.
    assert _available(buyer.current_team) == Decimal("1")
    assert _available(seller.current_team) == Decimal("4")
    operation = Operation.objects.get(kind=Operation.Kind.MODEL_COPY)
    assert sum(entry.amount for entry in operation.entries.all()) == 0
    assert ModelCopy.objects.get().source_version_id == model.active_version_id

    # The buyer predicts with the copy through the ordinary API (the loader checks the file),
    # as with any model of theirs: at the platform's own price.
    answer = client.post(f"/api/v1/models/{copy.pk}/predict/", {"rows": [ROW]}, format="json")
    assert answer.status_code == 200, answer.content


@pytest.mark.usefixtures("billing_on")
def test_a_copy_without_credit_is_refused_and_leaves_nothing(
    buyer: Any, publish: Any, fund: Any, commission: Decimal
) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("5"))
    fund(buyer.current_team, "4")
    response = api_client_for(buyer).post(f"{LISTINGS}{listing.pk}/copy/")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert Machine.objects.filter(team=buyer.current_team).count() == 0
    assert ModelCopy.objects.count() == 0
    assert _available(buyer.current_team) == Decimal("4")


def test_a_tampered_artifact_is_not_copied(buyer: Any, model: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("0"))
    artifact = storage.local_path(model.active_version.outputs[0]["artifact"])
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    response = api_client_for(buyer).post(f"{LISTINGS}{listing.pk}/copy/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "artifact_invalid"
    assert Machine.objects.filter(team=buyer.current_team).count() == 0


def test_a_tampered_copy_is_refused_on_load(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("0"))
    client = api_client_for(buyer)
    copy = Machine.objects.get(pk=client.post(f"{LISTINGS}{listing.pk}/copy/").json()["model"])
    artifact = storage.local_path(copy.active_version.outputs[0]["artifact"])
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    answer = client.post(f"/api/v1/models/{copy.pk}/predict/", {"rows": [ROW]}, format="json")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "artifact_invalid"


def test_listings_without_a_copy_price_offer_no_copies(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"))
    response = api_client_for(buyer).post(f"{LISTINGS}{listing.pk}/copy/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "copies_not_offered"


def test_viewers_cannot_spend_on_copies(buyer: Any, publish: Any) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("0"))
    viewer = member("viewer", buyer.current_team)
    assert api_client_for(viewer).post(f"{LISTINGS}{listing.pk}/copy/").status_code == 403


@pytest.mark.usefixtures("billing_on")
def test_push_update_charges_each_copy_and_skips_teams_without_credit(
    seller: Any,
    buyer: Any,
    model: Any,
    publish: Any,
    fund: Any,
    commission: Decimal,
    trained_binary: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    listing = publish(price=Decimal("1"), copy_price=Decimal("5"), copy_update_price=Decimal("2"))
    poor = member("owner")
    fund(buyer.current_team, "7")
    fund(poor.current_team, "5")
    rich_copy = api_client_for(buyer).post(f"{LISTINGS}{listing.pk}/copy/").json()
    poor_copy = api_client_for(poor).post(f"{LISTINGS}{listing.pk}/copy/").json()
    seller_client = api_client_for(seller)
    url = f"{LISTINGS}{listing.pk}/push_update/"

    # Nothing new: every copy is current, nothing charged.
    response = seller_client.post(url)
    assert response.json() == {
        "results": [
            {"copy": poor_copy["id"], "status": "current"},
            {"copy": rich_copy["id"], "status": "current"},
        ]
    }

    install_version(model, trained_binary, number=2)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.post(url)
    assert response.status_code == 200
    assert sorted(response.json()["results"], key=lambda r: r["copy"]) == [
        {"copy": rich_copy["id"], "status": "updated"},
        {"copy": poor_copy["id"], "status": "skipped_no_credit"},
    ]
    rich = Machine.objects.get(pk=rich_copy["model"])
    assert rich.active_version.number == 2
    assert ModelVersion.objects.filter(machine=rich).count() == 2
    assert _available(buyer.current_team) == Decimal("0")
    poor_machine = Machine.objects.get(pk=poor_copy["model"])
    assert poor_machine.active_version.number == 1
    skipped = ModelCopy.objects.get(pk=poor_copy["id"])
    assert skipped.update_skipped_version == 2
    assert skipped.update_skipped_at is not None
    [message] = mail.outbox
    assert message.to == [poor.email]
    assert "waits for credit" in message.subject
    # The seller got 5 + 5 for the copies and 2 for the update, minus 20 %.
    assert _available(seller.current_team) == Decimal("9.6")
    assert ListingUse.objects.filter(kind=ListingUse.Kind.MODEL_COPY_UPDATE).count() == 1

    # Pushing again charges nobody twice; the poor team, now funded, is updated.
    fund(poor.current_team, "2")
    response = seller_client.post(url)
    assert sorted(response.json()["results"], key=lambda r: r["copy"]) == [
        {"copy": rich_copy["id"], "status": "current"},
        {"copy": poor_copy["id"], "status": "updated"},
    ]
    assert Operation.objects.filter(kind=Operation.Kind.MODEL_COPY_UPDATE).count() == 2
    skipped.refresh_from_db()
    assert skipped.update_skipped_at is None
