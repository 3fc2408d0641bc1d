"""The ledger's rules, on whichever database the pass runs: entries sum to zero, promotional
credit is spent first, a retried charge charges once, nothing is edited or deleted, a reversal
undoes into the same buckets, holds settle and release exactly, and the database itself refuses
a negative balance. (Concurrent charges on PostgreSQL: test_ledger_concurrency.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from mlmanager.billing.errors import IdempotencyConflict, InsufficientCredits
from mlmanager.billing.models import Account, LedgerEntry, Operation, Reservation
from mlmanager.billing.services import ledger
from mlmanager.core.tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

D = Decimal
Kind = Operation.Kind


def balances(team) -> tuple[Decimal, Decimal, Decimal]:
    account = Account.objects.get(team=team)
    return account.balance, account.promotional_balance, account.reserved


def entries_of(operation: Operation) -> list[tuple[str, str, Decimal]]:
    return [
        (entry.account.kind, entry.bucket, entry.amount)
        for entry in operation.entries.select_related("account").order_by("id")
    ]


def assert_books_balance() -> None:
    """Every operation's entries sum to zero, and so do all accounts together."""
    unbalanced = (
        LedgerEntry.objects.values("operation")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .count()
    )
    assert unbalanced == 0
    totals = Account.objects.aggregate(b=Sum("balance"), p=Sum("promotional_balance"))
    assert (totals["b"] or 0) + (totals["p"] or 0) == 0
    for account in Account.objects.all():
        entries = LedgerEntry.objects.filter(account=account)
        credits = entries.filter(bucket="credits").aggregate(s=Sum("amount"))["s"] or 0
        promotional = entries.filter(bucket="promotional").aggregate(s=Sum("amount"))["s"] or 0
        assert (account.balance, account.promotional_balance) == (credits, promotional)


def test_charge_spends_promotional_credit_first(billing_on, fund):
    team = TeamFactory()
    fund(team, "5")
    fund(team, "2", promotional=True)
    operation = ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("3.5"))
    assert entries_of(operation) == [
        ("team", "promotional", D("-2")),
        ("team", "credits", D("-1.5")),
        ("platform", "credits", D("3.5")),
    ]
    assert balances(team) == (D("3.5"), D("0"), D("0"))
    assert ledger.book_account(Account.Kind.PLATFORM).balance == D("3.5")
    assert_books_balance()


def test_a_charge_over_the_available_credit_is_refused_and_writes_nothing(billing_on, fund):
    team = TeamFactory()
    fund(team, "1")
    before = Operation.objects.count()
    with pytest.raises(InsufficientCredits) as refused:
        ledger.charge(team_id=team.pk, kind=Kind.TRAINING, amount=D("1.000001"))
    assert refused.value.status_code == 402
    assert refused.value.code == "insufficient_credits"
    assert refused.value.details == {"needed": "1.000001", "available": "1.00"}
    assert Operation.objects.count() == before
    assert balances(team) == (D("1"), D("0"), D("0"))


def test_billing_off_charges_and_holds_nothing(fund):
    team = TeamFactory()
    fund(team, "3")  # staff may fund accounts before switching billing on
    before = Operation.objects.count()
    assert ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("1")) is None
    assert (
        ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="k", amount=D(1)) is None
    )
    assert Operation.objects.count() == before
    assert balances(team) == (D("3"), D("0"), D("0"))


def test_a_replay_with_the_same_key_charges_once(billing_on, fund):
    team = TeamFactory()
    fund(team, "10")
    first = ledger.charge(
        team_id=team.pk, kind=Kind.PREDICTION, amount=D("2"), idempotency_key="req-1"
    )
    again = ledger.charge(
        team_id=team.pk, kind=Kind.PREDICTION, amount=D("2"), idempotency_key="req-1"
    )
    assert again.pk == first.pk
    assert balances(team) == (D("8"), D("0"), D("0"))
    # The same key for something else is the client's mistake, not a second charge.
    with pytest.raises(IdempotencyConflict):
        ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("3"), idempotency_key="req-1")
    assert balances(team) == (D("8"), D("0"), D("0"))
    # Keys are per team: another team's identical key is its own charge.
    other = TeamFactory()
    fund(other, "5")
    mine = ledger.charge(
        team_id=other.pk, kind=Kind.PREDICTION, amount=D("2"), idempotency_key="req-1"
    )
    assert mine.pk != first.pk
    assert balances(other) == (D("3"), D("0"), D("0"))


def test_the_database_refuses_a_negative_balance_even_bypassing_the_service(fund):
    team = TeamFactory()
    account = fund(team, "1")
    for column in ("balance", "promotional_balance", "reserved"):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE billing_account SET {column} = -1 WHERE id = %s",  # noqa: S608 - fixed names
                [account.pk],
            )
    # Reserving more than the account holds is refused too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(reserved=D("1.5"))
    assert balances(team) == (D("1"), D("0"), D("0"))


def test_operations_and_entries_refuse_edit_and_delete(billing_on, fund):
    team = TeamFactory()
    fund(team, "5")
    operation = ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("1"))
    entry = operation.entries.first()
    operation.description = "changed"
    with pytest.raises(TypeError):
        operation.save()
    with pytest.raises(TypeError):
        operation.delete()
    with pytest.raises(TypeError):
        Operation.objects.filter(pk=operation.pk).update(description="changed")
    with pytest.raises(TypeError):
        Operation.objects.filter(pk=operation.pk).delete()
    entry.amount = D("-100")
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=D("-100"))
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(operation=operation).delete()
    operation.refresh_from_db()
    assert operation.description == ""
    assert [e.amount for e in operation.entries.order_by("id")] == [D("-1"), D("1")]


def test_reverse_undoes_into_the_same_buckets(billing_on, fund, owner):
    team = TeamFactory()
    fund(team, "5")
    fund(team, "1", promotional=True)
    charged = ledger.charge(team_id=team.pk, kind=Kind.TRAINING, amount=D("3"))
    assert balances(team) == (D("3"), D("0"), D("0"))
    refund = ledger.operation_reverse(operation=charged, created_by_id=owner.pk, reason="oops")
    assert refund.kind == Kind.REFUND
    assert refund.reverses_id == charged.pk
    assert entries_of(refund) == [
        ("team", "promotional", D("1")),
        ("team", "credits", D("2")),
        ("platform", "credits", D("-3")),
    ]
    assert balances(team) == (D("5"), D("1"), D("0"))
    with pytest.raises(IdempotencyConflict) as twice:
        ledger.operation_reverse(operation=charged, created_by_id=owner.pk, reason="again")
    assert twice.value.code == "already_reversed"
    assert balances(team) == (D("5"), D("1"), D("0"))
    assert_books_balance()


def test_reservation_hold_settle_release_arithmetic(billing_on, fund):
    team = TeamFactory()
    fund(team, "10")
    held = ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:1", amount=D(4))
    assert balances(team) == (D("10"), D("0"), D("4"))
    assert Account.objects.get(team=team).available == D("6")
    # A hold again with the same key is the first hold, not a second.
    assert (
        ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:1", amount=D(4)).pk
        == held.pk
    )
    assert balances(team) == (D("10"), D("0"), D("4"))
    # What is held cannot be spent elsewhere.
    with pytest.raises(InsufficientCredits):
        ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("6.5"))
    with pytest.raises(InsufficientCredits):
        ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:2", amount=D(7))

    settled = ledger.reservation_settle(key="job:1", used=D("2.5"))
    assert balances(team) == (D("7.5"), D("0"), D("0"))
    assert entries_of(settled) == [
        ("team", "credits", D("-2.5")),
        ("platform", "credits", D("2.5")),
    ]
    assert settled.details["reserved"] == "4.000000"
    # Idempotent: the job's end and the reaper may both settle.
    assert ledger.reservation_settle(key="job:1", used=D("4")).pk == settled.pk
    assert ledger.reservation_release(key="job:1").status == Reservation.Status.SETTLED
    assert balances(team) == (D("7.5"), D("0"), D("0"))

    # Using more than was held charges the hold, never more.
    ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:3", amount=D(2))
    over = ledger.reservation_settle(key="job:3", used=D("9"))
    assert -sum(e.amount for e in over.entries.all() if e.account.kind == "team") == D("2")
    assert balances(team) == (D("5.5"), D("0"), D("0"))

    # A release charges nothing and frees the hold; settling afterwards changes nothing.
    ledger.reservation_hold(team_id=team.pk, kind=Kind.CONSULTING, key="consulting:1", amount=D(5))
    assert balances(team) == (D("5.5"), D("0"), D("5"))
    released = ledger.reservation_release(key="consulting:1")
    assert released.status == Reservation.Status.RELEASED
    assert ledger.reservation_settle(key="consulting:1", used=D(5)) is None
    assert balances(team) == (D("5.5"), D("0"), D("0"))
    # Nothing used: settled without an operation.
    ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:4", amount=D(1))
    assert ledger.reservation_settle(key="job:4", used=D(0)) is None
    assert Reservation.objects.get(key="job:4").status == Reservation.Status.SETTLED
    assert balances(team) == (D("5.5"), D("0"), D("0"))
    assert_books_balance()


def test_a_settlement_spends_promotional_credit_first(billing_on, fund):
    team = TeamFactory()
    fund(team, "3")
    fund(team, "1", promotional=True)
    ledger.reservation_hold(team_id=team.pk, kind=Kind.TRAINING, key="job:9", amount=D(3))
    operation = ledger.reservation_settle(key="job:9", used=D("1.5"))
    assert entries_of(operation) == [
        ("team", "promotional", D("-1")),
        ("team", "credits", D("-0.5")),
        ("platform", "credits", D("1.5")),
    ]
    assert balances(team) == (D("2.5"), D("0"), D("0"))


def test_payees_share_a_charge_and_every_operation_sums_to_zero(billing_on, fund, owner):
    """A mixed workload: credits, coupons, charges with payees, holds, refunds."""
    buyer, seller = TeamFactory(), TeamFactory()
    fund(buyer, "20")
    fund(buyer, "2", promotional=True)
    seller_account = ledger.team_account(seller.pk)
    platform = ledger.book_account(Account.Kind.PLATFORM)
    sale = ledger.charge(
        team_id=buyer.pk,
        kind=Kind.MARKETPLACE_PREDICTION,
        amount=D("5"),
        payees=[(seller_account, D("4")), (platform, D("1"))],
    )
    assert entries_of(sale) == [
        ("team", "promotional", D("-2")),
        ("team", "credits", D("-3")),
        ("team", "credits", D("4")),
        ("platform", "credits", D("1")),
    ]
    assert balances(seller) == (D("4"), D("0"), D("0"))
    with pytest.raises(ValueError):
        ledger.charge(
            team_id=buyer.pk,
            kind=Kind.MARKETPLACE_PREDICTION,
            amount=D("5"),
            payees=[(seller_account, D("4"))],
        )
    for index in range(5):
        ledger.charge(team_id=buyer.pk, kind=Kind.PREDICTION, amount=D("0.0001") * (index + 1))
    ledger.reservation_hold(team_id=buyer.pk, kind=Kind.TRAINING, key="job:7", amount=D(3))
    ledger.reservation_settle(key="job:7", used=D("1.25"))
    ledger.operation_reverse(operation=sale, created_by_id=owner.pk, reason="refund")
    # The seller spent nothing, so the reversal took its share back.
    assert balances(seller) == (D("0"), D("0"), D("0"))
    assert_books_balance()


def test_amounts_round_to_six_places_and_zero_charges_nothing(billing_on, fund):
    team = TeamFactory()
    fund(team, "1")
    assert ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("0.0000004")) is None
    operation = ledger.charge(team_id=team.pk, kind=Kind.PREDICTION, amount=D("0.0000005"))
    assert [e.amount for e in operation.entries.order_by("id")] == [D("-0.000001"), D("0.000001")]
