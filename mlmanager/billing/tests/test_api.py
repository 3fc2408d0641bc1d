"""Billing's API: the account, the ledger (the team's own side only), prices, statements,
coupons, staff credits and payments; cross-team and non-staff refusals; 400s; query counts."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from mlmanager.accounts.models import Membership
from mlmanager.billing.models import Account, Coupon, Operation, Payment
from mlmanager.billing.services import ledger
from mlmanager.core.tests.factories import TeamFactory, UserFactory, api_client_for, member

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def staff_api(db):
    user = UserFactory(is_staff=True)
    return api_client_for(user)


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- account ---------------------------------------------------------------------------------


def test_account_of_a_team_that_never_paid_is_zero_and_creates_nothing(api, owner, settings):
    settings.MLMANAGER_BILLING_CURRENCY = "EUR"
    response = api.get("/api/v1/billing/account/")
    assert response.status_code == 200
    assert response.json() == {
        "team": owner.current_team_id,
        "currency": "EUR",
        "balance": "0.00",
        "promotional_balance": "0.00",
        "reserved": "0.00",
        "available": "0.00",
    }
    assert not Account.objects.filter(team_id=owner.current_team_id).exists()


def test_account_shows_balances_as_decimal_strings(api, owner, fund, billing_on):
    team = owner.current_team
    fund(team, "12.5")
    fund(team, "3", promotional=True)
    ledger.reservation_hold(team_id=team.pk, kind="training", key="job:1", amount=D("0.0001"))
    body = api.get("/api/v1/billing/account/").json()
    assert (body["balance"], body["promotional_balance"], body["reserved"]) == (
        "12.50",
        "3.00",
        "0.0001",
    )
    assert body["available"] == "15.4999"


def test_a_viewer_sees_the_account_and_another_team_is_not_found(fund):
    viewer = member("viewer")
    fund(viewer.current_team, "4")
    client = api_client_for(viewer)
    assert client.get("/api/v1/billing/account/").json()["balance"] == "4.00"
    other = TeamFactory()
    fund(other, "99")
    for url in (
        f"/api/v1/billing/account/?team={other.pk}",
        f"/api/v1/billing/ledger/?team={other.pk}",
        f"/api/v1/billing/statements/2026-01/?team={other.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert error_code(response) == "not_found"


def test_a_team_token_reaches_only_its_team(fund):
    user = member("owner")
    first = user.current_team
    second = TeamFactory()
    Membership.objects.create(team=second, user=user, role="owner")
    fund(second, "7")
    client = api_client_for(user, team=first)
    assert client.get(f"/api/v1/billing/account/?team={second.pk}").status_code == 404
    assert (
        api_client_for(user).get(f"/api/v1/billing/account/?team={second.pk}").json()["balance"]
        == "7.00"
    )


def test_account_needs_credentials(client):
    response = client.get("/api/v1/billing/account/")
    assert response.status_code in (401, 403)


# --- ledger ----------------------------------------------------------------------------------


def test_ledger_lists_the_teams_operations_newest_first_with_its_own_entries(
    api, owner, fund, billing_on
):
    team = owner.current_team
    fund(team, "10")
    fund(team, "1", promotional=True)
    charge = ledger.charge(
        team_id=team.pk,
        kind=Operation.Kind.PREDICTION,
        amount=D("1.5"),
        description="12 rows",
        details={"rows": 12},
    )
    body = api.get("/api/v1/billing/ledger/").json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first == {
        "id": charge.pk,
        "kind": "prediction",
        "created_at": first["created_at"],
        "description": "12 rows",
        "amount": "-1.50",
        "reverses": None,
        "details": {"rows": 12},
        "entries": [
            {"account": "team", "bucket": "promotional", "amount": "-1.00"},
            {"account": "team", "bucket": "credits", "amount": "-0.50"},
        ],
        "counterparties": ["platform"],
    }
    assert [op["kind"] for op in body["results"]] == ["prediction", "coupon", "credit"]
    assert body["results"][2]["counterparties"] == ["outside"]
    only = api.get("/api/v1/billing/ledger/?kind=coupon").json()
    assert [op["kind"] for op in only["results"]] == ["coupon"]


def test_a_sellers_ledger_shows_a_buyers_payment_without_the_buyer(fund, billing_on):
    seller = member("owner")
    buyer = TeamFactory()
    fund(buyer, "10")
    seller_account = ledger.team_account(seller.current_team_id)
    platform = ledger.book_account(Account.Kind.PLATFORM)
    ledger.charge(
        team_id=buyer.pk,
        kind=Operation.Kind.MARKETPLACE_PREDICTION,
        amount=D("5"),
        payees=[(seller_account, D("4")), (platform, D("1"))],
        description=f"buyer team {buyer.name} secret",
        details={"buyer_model": 123},
    )
    body = api_client_for(seller).get("/api/v1/billing/ledger/").json()
    assert body["count"] == 1
    sale = body["results"][0]
    assert sale["amount"] == "4.00"
    assert sale["entries"] == [{"account": "team", "bucket": "credits", "amount": "4.00"}]
    assert sale["counterparties"] == ["another team", "platform"]
    assert sale["details"] == {}
    assert buyer.name not in str(body)
    assert "team" not in sale


def test_ledger_refuses_a_bad_filter_or_page(api):
    assert error_code(api.get("/api/v1/billing/ledger/?kind=nope")) == "invalid_filter"
    assert error_code(api.get("/api/v1/billing/ledger/?limit=0")) == "invalid_filter"
    for team in ("abc", "0", "-1", "1&team=2", "", "99999999999999999999"):
        response = api.get(f"/api/v1/billing/ledger/?team={team}")
        assert (response.status_code, error_code(response)) == (400, "invalid_filter"), team


def test_ledger_queries_do_not_grow_with_operations(
    api, owner, fund, billing_on, django_assert_max_num_queries
):
    team = owner.current_team
    fund(team, "100")
    api.get("/api/v1/billing/ledger/")  # warm-up: the token's last-used write
    with django_assert_max_num_queries(9) as few:
        assert api.get("/api/v1/billing/ledger/").json()["count"] == 1
    for _ in range(30):
        ledger.charge(team_id=team.pk, kind=Operation.Kind.PREDICTION, amount=D("0.1"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get("/api/v1/billing/ledger/").json()["count"] == 31


# --- prices ----------------------------------------------------------------------------------


def test_prices_in_force_for_anyone_signed_in(api):
    body = api.get("/api/v1/billing/prices/").json()
    keys = [price["key"] for price in body["results"]]
    assert "predictions_1000_rows" in keys
    assert len(keys) == len(set(keys))
    price = body["results"][keys.index("predictions_1000_rows")]
    assert set(price) == {"key", "label", "amount", "valid_from"}


# --- staff credits ---------------------------------------------------------------------------


def test_staff_credit_then_replay_answers_the_same_operation(staff_api):
    team = TeamFactory()
    body = {"team": team.pk, "amount": "25.00", "reason": "welcome", "idempotency_key": "c-1"}
    first = staff_api.post("/api/v1/billing/credits/", body, format="json")
    assert first.status_code == 201
    again = staff_api.post("/api/v1/billing/credits/", body, format="json")
    assert again.status_code == 200
    assert again.json()["operation"] == first.json()["operation"]
    operation = Operation.objects.get(pk=first.json()["operation"])
    assert (operation.kind, operation.description) == ("credit", "welcome")
    assert Account.objects.get(team=team).balance == D("25")
    changed = staff_api.post("/api/v1/billing/credits/", {**body, "amount": "26"}, format="json")
    assert changed.status_code == 409
    assert error_code(changed) == "idempotency_conflict"
    assert Account.objects.get(team=team).balance == D("25")


def test_staff_only_endpoints_refuse_non_staff(api, owner):
    team = owner.current_team
    for url, body in (
        (
            "/api/v1/billing/credits/",
            {"team": team.pk, "amount": "5", "reason": "x", "idempotency_key": "k"},
        ),
        ("/api/v1/billing/coupons/", {"code": "FREE-5", "amount": "5"}),
        ("/api/v1/billing/payments/", {"team": team.pk, "amount": "5", "reference": "r"}),
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 403, url
        assert error_code(response) == "permission_denied"
    assert not Operation.objects.exists()
    assert not Coupon.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "5", "reason": "x", "idempotency_key": "k"}, "team"),
        ({"team": 1, "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "-5", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "0", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "1.0000001", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "NaN", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "5", "idempotency_key": "k"}, "reason"),
        ({"team": 1, "amount": "5", "reason": "x"}, "idempotency_key"),
        ({"team": 1, "amount": "5", "reason": 3, "idempotency_key": "k"}, "reason"),
        ({"team": 1, "amount": "1e3", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": "01", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": 5, "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"team": 1, "amount": " 5", "reason": "x", "idempotency_key": "k"}, "amount"),
    ],
)
def test_staff_credit_refuses_bad_input(staff_api, body, field):
    response = staff_api.post("/api/v1/billing/credits/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json()["error"])


def test_staff_credit_to_a_missing_team_is_not_found(staff_api):
    body = {"team": 999999, "amount": "1", "reason": "x", "idempotency_key": "k"}
    assert staff_api.post("/api/v1/billing/credits/", body, format="json").status_code == 404


# --- coupons ---------------------------------------------------------------------------------


def test_coupon_created_by_staff_and_redeemed_by_an_editor(staff_api, billing_on):
    expires = (timezone.now() + timedelta(days=3)).isoformat()
    created = staff_api.post(
        "/api/v1/billing/coupons/",
        {"code": "WELCOME-10", "amount": "10", "expires_at": expires, "max_uses": 2},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["uses"] == 0
    duplicate = staff_api.post(
        "/api/v1/billing/coupons/", {"code": "WELCOME-10", "amount": "1"}, format="json"
    )
    assert (duplicate.status_code, error_code(duplicate)) == (409, "coupon_exists")

    editor = member("editor")
    client = api_client_for(editor)
    redeemed = client.post("/api/v1/billing/coupons/redeem/", {"code": "WELCOME-10"}, format="json")
    assert redeemed.status_code == 201
    assert redeemed.json()["amount"] == "10.00"
    account = Account.objects.get(team=editor.current_team)
    assert (account.balance, account.promotional_balance) == (D("0"), D("10"))
    operation = Operation.objects.get(pk=redeemed.json()["operation"])
    assert operation.kind == "coupon"
    again = client.post("/api/v1/billing/coupons/redeem/", {"code": "WELCOME-10"}, format="json")
    assert (again.status_code, error_code(again)) == (400, "coupon_already_redeemed")

    second = api_client_for(member("owner"))
    assert (
        second.post(
            "/api/v1/billing/coupons/redeem/", {"code": "WELCOME-10"}, format="json"
        ).status_code
        == 201
    )
    third = api_client_for(member("admin"))
    used_up = third.post("/api/v1/billing/coupons/redeem/", {"code": "WELCOME-10"}, format="json")
    assert (used_up.status_code, error_code(used_up)) == (400, "coupon_used_up")
    assert Coupon.objects.get(code="WELCOME-10").uses == 2


def test_redeem_refusals(db):
    Coupon.objects.create(
        code="OLD", amount=D("1"), expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = api_client_for(member("editor"))
    for body, code in (
        ({"code": "NOPE"}, "coupon_unknown"),
        ({"code": "OLD"}, "coupon_expired"),
        ({"code": ""}, "invalid"),
        ({"code": 5}, "invalid"),
        ({}, "invalid"),
    ):
        response = client.post("/api/v1/billing/coupons/redeem/", body, format="json")
        assert (response.status_code, error_code(response)) == (400, code), body
    Coupon.objects.create(code="FINE", amount=D("1"))
    viewer = api_client_for(member("viewer"))
    response = viewer.post("/api/v1/billing/coupons/redeem/", {"code": "FINE"}, format="json")
    assert response.status_code == 403
    assert Coupon.objects.get(code="FINE").uses == 0


@pytest.mark.parametrize(
    "body",
    [
        {"code": "x", "amount": "5"},
        {"code": "has space", "amount": "5"},
        {"code": "OK-CODE", "amount": "abc"},
        {"code": "OK-CODE", "amount": "5", "max_uses": 0},
        {"code": "OK-CODE", "amount": "5", "expires_at": "2001-01-01T00:00:00Z"},
        {"code": "OK-CODE", "amount": "5", "expires_at": "soon"},
    ],
)
def test_coupon_create_refuses_bad_input(staff_api, body):
    response = staff_api.post("/api/v1/billing/coupons/", body, format="json")
    assert response.status_code == 400
    assert not Coupon.objects.exists()


# --- payments --------------------------------------------------------------------------------


def test_staff_record_a_manual_payment_once_per_reference(staff_api):
    team = TeamFactory()
    body = {"team": team.pk, "amount": "100", "reference": "BANK-2026-0001"}
    first = staff_api.post("/api/v1/billing/payments/", body, format="json")
    assert first.status_code == 201
    assert first.json()["provider"] == "manual"
    again = staff_api.post("/api/v1/billing/payments/", body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Payment.objects.count() == 1
    assert Operation.objects.get(pk=first.json()["operation"]).kind == "bill_payment"
    assert Account.objects.get(team=team).balance == D("100")
    other = TeamFactory()
    clash = staff_api.post("/api/v1/billing/payments/", {**body, "team": other.pk}, format="json")
    assert (clash.status_code, error_code(clash)) == (409, "payment_reference_used")
    assert (
        staff_api.post(
            "/api/v1/billing/payments/", {**body, "reference": ""}, format="json"
        ).status_code
        == 400
    )
    # Long references sharing a prefix are different payments.
    for last in "ab":
        long = {"team": team.pk, "amount": "1", "reference": "0" * 199 + last}
        assert staff_api.post("/api/v1/billing/payments/", long, format="json").status_code == 201
    assert Account.objects.get(team=team).balance == D("102")


# --- statements ------------------------------------------------------------------------------


def test_statement_json_csv_and_pdf(api, owner, fund, billing_on):
    team = owner.current_team
    fund(team, "10")
    fund(team, "2", promotional=True)
    ledger.charge(
        team_id=team.pk, kind=Operation.Kind.PREDICTION, amount=D("3"), description="=cmd()"
    )
    month = timezone.localtime().strftime("%Y-%m")
    body = api.get(f"/api/v1/billing/statements/{month}/").json()
    assert (body["opening_balance"], body["opening_promotional"]) == ("0.00", "0.00")
    assert [line["amount"] for line in body["lines"]] == ["10.00", "2.00", "-3.00"]
    assert [line["balance"] for line in body["lines"]] == ["10.00", "10.00", "9.00"]
    assert [line["promotional_balance"] for line in body["lines"]] == ["0.00", "2.00", "0.00"]
    assert (body["closing_balance"], body["closing_promotional"]) == ("9.00", "0.00")

    response = api.get(f"/api/v1/billing/statements/{month}/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["time", "operation", "kind"]
    assert rows[1][2] == "opening"
    assert rows[-2][3] == "'=cmd()"  # formula-escaped
    assert rows[-2][6] == "-3.00"  # amounts stay numbers
    assert rows[-1][2:] == ["closing", "Closing balance", "", "", "", "9.00", "0.00"]

    pdf = api.get(f"/api/v1/billing/statements/{month}/?format=pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_statement_of_an_earlier_month_opens_with_the_balance_then(api, owner, fund):
    fund(owner.current_team, "4")
    future = timezone.localtime() + timedelta(days=40)
    body = api.get(f"/api/v1/billing/statements/{future:%Y-%m}/").json()
    assert (body["opening_balance"], body["closing_balance"], body["lines"]) == ("4.00", "4.00", [])


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "abc", "0000-01", "2026-00"])
def test_statement_refuses_a_bad_month(api, month):
    response = api.get(f"/api/v1/billing/statements/{month}/")
    assert (response.status_code, error_code(response)) == (400, "invalid_month")


def test_statement_refuses_a_bad_format(api):
    response = api.get("/api/v1/billing/statements/2026-01/?format=xls")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
