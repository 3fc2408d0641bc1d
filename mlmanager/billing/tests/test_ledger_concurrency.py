"""Concurrent charges on PostgreSQL: row locks make 50 simultaneous debits queue, so exactly
as many succeed as the balance covers, the balance never goes below zero, a retried request
(with its idempotency key, retried at the same moment) charges once, and a coupon's last use
goes to one team.

Each thread works on its own database connection and commits for real (transactional_db). These
tests need PostgreSQL (SQLite serialises writers, so it would prove nothing): they carry the
`postgresql` marker, run in the PostgreSQL pass (`make test-postgres`) and are deselected by
`make test-sqlite` (`-m "not postgresql"`), never skipped; run on SQLite anyway, they fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import Sum

from mlmanager.accounts.caller import Caller
from mlmanager.billing.errors import InsufficientCredits
from mlmanager.billing.models import Account, Coupon, CouponRedemption, LedgerEntry, Operation
from mlmanager.billing.services import coupons, ledger
from mlmanager.core.tests.factories import TeamFactory, member

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

D = Decimal


@pytest.fixture(autouse=True)
def _postgresql(transactional_db: None) -> None:
    assert connection.vendor == "postgresql", (
        "row-lock tests need PostgreSQL: run them with DATABASE_URL=postgres://… "
        "(make test-postgres); make test-sqlite deselects them (-m 'not postgresql')"
    )


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; each result or the exception it
    raised, in order. Each thread has its own connection, closed when it ends."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_50_concurrent_debits_against_a_balance_for_10(billing_on, fund):
    team = TeamFactory()
    fund(team, "10")

    results = at_once(
        50,
        lambda index: ledger.charge(
            team_id=team.pk,
            kind=Operation.Kind.PREDICTION,
            amount=D("1"),
            idempotency_key=f"request-{index}",
        ),
    )

    succeeded = [result for result in results if isinstance(result, Operation)]
    refused = [result for result in results if isinstance(result, InsufficientCredits)]
    assert (len(succeeded), len(refused)) == (10, 40)
    assert all(error.status_code == 402 for error in refused)
    account = Account.objects.get(team=team)
    assert (account.balance, account.promotional_balance, account.reserved) == (0, 0, 0)
    # Never negative along the way: the running balance over the entries in order.
    running = D(0)
    for amount in (
        LedgerEntry.objects.filter(account=account).order_by("id").values_list("amount", flat=True)
    ):
        running += amount
        assert running >= 0
    assert running == 0
    assert ledger.book_account(Account.Kind.PLATFORM).balance == D("10")
    _assert_books_balance()


def test_concurrent_replays_with_one_key_charge_once(billing_on, fund):
    team = TeamFactory()
    fund(team, "10")

    results = at_once(
        20,
        lambda _index: ledger.charge(
            team_id=team.pk,
            kind=Operation.Kind.PREDICTION,
            amount=D("1.5"),
            idempotency_key="the-same-request",
        ),
    )

    assert all(isinstance(result, Operation) for result in results), results
    assert len({result.pk for result in results}) == 1
    assert Operation.objects.filter(team=team, kind=Operation.Kind.PREDICTION).count() == 1
    assert Account.objects.get(team=team).balance == D("8.5")
    _assert_books_balance()


def test_concurrent_holds_never_reserve_more_than_the_balance(billing_on, fund):
    team = TeamFactory()
    fund(team, "10")

    results = at_once(
        12,
        lambda index: ledger.reservation_hold(
            team_id=team.pk, kind=Operation.Kind.TRAINING, key=f"job:{index}", amount=D("3")
        ),
    )

    held = [result for result in results if not isinstance(result, Exception)]
    assert len(held) == 3
    assert all(isinstance(r, InsufficientCredits) for r in results if isinstance(r, Exception))
    account = Account.objects.get(team=team)
    assert (account.balance, account.reserved) == (D("10"), D("9"))


def test_the_last_use_of_a_coupon_goes_to_one_team(billing_on):
    coupon = Coupon.objects.create(code="LAST-ONE", amount=D("5"), max_uses=3)
    editors = [member("editor") for _ in range(10)]
    teams = [editor.current_team for editor in editors]

    results = at_once(
        10,
        lambda index: coupons.coupon_redeem(
            caller=Caller.for_session(editors[index]), team=teams[index], code="LAST-ONE"
        ),
    )

    redeemed = [r for r in results if isinstance(r, CouponRedemption)]
    refused = [r for r in results if isinstance(r, coupons.CouponRefused)]
    assert (len(redeemed), len(refused)) == (3, 7)
    assert {error.code for error in refused} == {"coupon_used_up"}
    coupon.refresh_from_db()
    assert coupon.uses == 3
    assert Account.objects.filter(promotional_balance=D("5")).count() == 3


def test_one_team_redeeming_a_coupon_twice_at_once_gets_it_once(billing_on):
    coupon = Coupon.objects.create(code="TWICE", amount=D("2"), max_uses=100)
    editor = member("editor")
    team = editor.current_team

    results = at_once(
        8,
        lambda _index: coupons.coupon_redeem(
            caller=Caller.for_session(editor), team=team, code="TWICE"
        ),
    )

    assert sum(isinstance(r, CouponRedemption) for r in results) == 1
    assert {r.code for r in results if isinstance(r, Exception)} == {"coupon_already_redeemed"}
    coupon.refresh_from_db()
    assert coupon.uses == 1
    assert Account.objects.get(team=team).promotional_balance == D("2")


def _assert_books_balance() -> None:
    assert (
        LedgerEntry.objects.values("operation").annotate(t=Sum("amount")).exclude(t=0).count() == 0
    )
    totals = Account.objects.aggregate(b=Sum("balance"), p=Sum("promotional_balance"))
    assert totals["b"] + totals["p"] == 0
