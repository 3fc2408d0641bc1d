"""Billing's pages: the account page, redeeming (htmx), the ledger, statements and downloads,
staff's credit and payment page, the nav entry, and the admin's rules for prices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from mlmanager.billing.models import Account, Coupon, Operation, Price
from mlmanager.billing.services import ledger
from mlmanager.core.tests.factories import TeamFactory, UserFactory, member

pytestmark = pytest.mark.django_db

D = Decimal


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_billing_page_shows_balances_operations_and_prices(fund, billing_on):
    viewer = member("viewer")
    fund(viewer.current_team, "12.5")
    fund(viewer.current_team, "2", promotional=True)
    page = signed_in(viewer).get("/billing/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="billing-balance">12.50<' in html
    assert 'data-testid="billing-promotional">2.00<' in html
    assert 'data-testid="billing-available">14.50<' in html
    assert html.count('data-testid="billing-operation"') == 2
    assert "Predictions, per 1 000 rows" in html
    assert 'data-testid="coupon-form"' not in html  # viewers may see, not redeem
    assert 'data-testid="nav-billing"' in html


def test_redeem_with_htmx_swaps_the_account_card(billing_on):
    Coupon.objects.create(code="HELLO", amount=D("3"))
    editor = member("editor")
    client = signed_in(editor)
    assert 'data-testid="coupon-form"' in client.get("/billing/").content.decode()
    answer = client.post("/billing/redeem/", {"code": "HELLO"}, HTTP_HX_REQUEST="true")
    html = answer.content.decode()
    assert answer.status_code == 200
    assert 'data-testid="coupon-redeemed"' in html
    assert 'data-testid="billing-promotional">3.00<' in html
    again = client.post("/billing/redeem/", {"code": "HELLO"}, HTTP_HX_REQUEST="true")
    assert "already redeemed" in again.content.decode()
    unknown = client.post("/billing/redeem/", {"code": "NOPE"}, HTTP_HX_REQUEST="true")
    assert 'data-testid="coupon-error"' in unknown.content.decode()
    # Without script: back to the page with a message.
    plain = client.post("/billing/redeem/", {"code": "NOPE"}, follow=True)
    assert "There is no coupon with this code." in plain.content.decode()
    assert Account.objects.get(team=editor.current_team).promotional_balance == D("3")


def test_a_viewer_cannot_redeem():
    Coupon.objects.create(code="HELLO", amount=D("3"))
    response = signed_in(member("viewer")).post(
        "/billing/redeem/", {"code": "HELLO"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert Coupon.objects.get(code="HELLO").uses == 0


def test_ledger_page_filters_by_kind_and_shows_only_the_team(fund, billing_on):
    owner = member("owner")
    team = owner.current_team
    fund(team, "10")
    ledger.charge(team_id=team.pk, kind=Operation.Kind.TRAINING, amount=D("1"), description="run 1")
    other = TeamFactory()
    fund(other, "5")
    ledger.charge(
        team_id=other.pk, kind=Operation.Kind.TRAINING, amount=D("1"), description="theirs"
    )
    client = signed_in(owner)
    html = client.get("/billing/ledger/").content.decode()
    assert html.count('data-testid="billing-operation"') == 2
    assert "theirs" not in html
    filtered = client.get("/billing/ledger/?kind=training").content.decode()
    assert filtered.count('data-testid="billing-operation"') == 1
    assert "run 1" in filtered
    # A kind the API would refuse is ignored on the page.
    assert client.get("/billing/ledger/?kind=nope").status_code == 200


def test_ledger_page_queries_do_not_grow(fund, billing_on, django_assert_max_num_queries):
    owner = member("owner")
    team = owner.current_team
    fund(team, "100")
    client = signed_in(owner)
    client.get("/billing/ledger/")
    with django_assert_max_num_queries(20) as few:
        assert client.get("/billing/ledger/").status_code == 200
    for _ in range(30):
        ledger.charge(team_id=team.pk, kind=Operation.Kind.PREDICTION, amount=D("0.1"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/billing/ledger/").status_code == 200


def test_statements_page_and_downloads(fund, billing_on):
    owner = member("owner")
    fund(owner.current_team, "10")
    client = signed_in(owner)
    month = timezone.localtime().strftime("%Y-%m")
    listing = client.get("/billing/statements/").content.decode()
    assert f"/billing/statements/{month}/" in listing
    page = client.get(f"/billing/statements/{month}/").content.decode()
    assert 'data-testid="statement-closing">10.00<' in page
    assert page.count('data-testid="statement-line"') == 1
    csv_file = client.get(f"/billing/statements/{month}/?format=csv")
    assert csv_file["Content-Disposition"] == (
        f'attachment; filename="statement-team-{owner.current_team_id}-{month}.csv"'
    )
    assert b"closing" in csv_file.content
    assert client.get(f"/billing/statements/{month}/?format=pdf").content.startswith(b"%PDF")
    assert client.get("/billing/statements/2026-99/").status_code == 400


def test_staff_page_credits_once_and_records_payments():
    staff = UserFactory(is_staff=True)
    team = TeamFactory()
    client = signed_in(staff)
    page = client.get("/billing/staff/").content.decode()
    assert 'name="idempotency_key"' in page
    body = {
        "action": "credit",
        "team": team.pk,
        "amount": "15",
        "reason": "pilot",
        "idempotency_key": "page-abc",
    }
    assert client.post("/billing/staff/", body).status_code == 302
    assert client.post("/billing/staff/", body).status_code == 302  # a double submit
    assert Account.objects.get(team=team).balance == D("15")
    payment = {"action": "payment", "team": team.pk, "amount": "5", "reference": "INV-1"}
    assert client.post("/billing/staff/", payment).status_code == 302
    assert Account.objects.get(team=team).balance == D("20")
    bad = client.post("/billing/staff/", {**payment, "amount": "-1"})
    assert bad.status_code == 200
    assert "positive amount" in bad.content.decode()


def test_staff_page_is_refused_to_others(fund):
    owner = member("owner")
    response = signed_in(owner).get("/billing/staff/")
    assert response.status_code == 403


def test_nav_shows_billing_only_when_on_or_to_staff(settings):
    owner = member("owner")
    settings.MLMANAGER_BILLING = False
    assert 'data-testid="nav-billing"' not in signed_in(owner).get("/jobs/").content.decode()
    staff = member("owner")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    assert 'data-testid="nav-billing"' in signed_in(staff).get("/jobs/").content.decode()
    settings.MLMANAGER_BILLING = True
    assert 'data-testid="nav-billing"' in signed_in(owner).get("/jobs/").content.decode()
    # Off, the page still answers (an empty account).
    settings.MLMANAGER_BILLING = False
    assert signed_in(owner).get("/billing/").status_code == 200


def test_admin_refuses_editing_a_price_in_force_and_allows_adding(admin_client):
    in_force = Price.objects.filter(valid_from__lte=timezone.now()).first()
    assert in_force is not None  # migration 0002's defaults
    change_url = f"/admin/billing/price/{in_force.pk}/change/"
    response = admin_client.post(
        change_url,
        {
            "key": in_force.key,
            "amount": "999",
            "valid_from_0": "2020-01-01",
            "valid_from_1": "00:00",
        },
    )
    in_force.refresh_from_db()
    assert in_force.amount != D("999")
    assert response.status_code in (200, 403)
    later = timezone.localtime() + timedelta(days=30)
    added = admin_client.post(
        "/admin/billing/price/add/",
        {
            "key": "predictions_1000_rows",
            "amount": "0.25",
            "valid_from_0": later.strftime("%Y-%m-%d"),
            "valid_from_1": "00:00:00",
        },
    )
    assert added.status_code == 302
    future = Price.objects.get(key="predictions_1000_rows", amount=D("0.25"))
    assert future.created_by is not None
    # Not yet in force and unused: still editable.
    assert admin_client.get(f"/admin/billing/price/{future.pk}/change/").status_code == 200


def test_admin_reverse_action_writes_a_refund(admin_client, fund, billing_on):
    team = TeamFactory()
    fund(team, "5")
    charge = ledger.charge(team_id=team.pk, kind=Operation.Kind.TRAINING, amount=D("2"))
    response = admin_client.post(
        "/admin/billing/operation/",
        {"action": "reverse_operations", "_selected_action": [charge.pk]},
    )
    assert response.status_code == 302
    assert Operation.objects.get(reverses=charge).kind == "refund"
    assert Account.objects.get(team=team).balance == D("5")
    for url in ("/admin/billing/account/", "/admin/billing/operation/", "/admin/billing/coupon/"):
        assert admin_client.get(url).status_code == 200
