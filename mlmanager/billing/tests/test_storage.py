"""Storage per GB-month: each storing team charged the day's share of a month once a day,
however many times the task runs; never below zero; nothing with billing off."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.billing.models import Account, Operation, Price
from mlmanager.billing.services import storage
from mlmanager.core.registries import periodic_tasks
from mlmanager.core.tests.factories import TeamFactory
from mlmanager.datasets.models import Dataset

pytestmark = pytest.mark.django_db

GB = 1024**3
DAY = dt.date(2026, 12, 7)  # December: 31 days


@pytest.fixture
def price() -> Price:
    """3.10 per GB-month: a day of December costs 0.10 per GB."""
    return Price.objects.create(
        key=Price.Key.STORAGE_GB_MONTH,
        amount=Decimal("3.10"),
        valid_from=timezone.now() - dt.timedelta(seconds=1),
    )


def storing(team: Any, size_bytes: int) -> None:
    Dataset.objects.create(
        team=team,
        name="d",
        original_filename="d.csv",
        storage_dir=f"d/{team.pk}/{size_bytes}",
        size_bytes=size_bytes,
    )


def storage_operations(team: Any) -> list[Operation]:
    return list(Operation.objects.filter(team=team, kind=Operation.Kind.STORAGE))


def test_registered_as_a_periodic_task() -> None:
    task = periodic_tasks.get("billing.storage")
    assert task.run == storage.storage_charge_all
    assert task.interval_s() == 3600.0


def test_charged_once_a_day_however_often_it_runs(billing_on: None, fund: Any, price: Any) -> None:
    team, other = TeamFactory(), TeamFactory()
    storing(team, 2 * GB)
    storing(other, GB // 2)
    fund(team, "10")
    fund(other, "10")
    assert storage.storage_charge_all(day=DAY) == 2
    assert storage.storage_charge_all(day=DAY) == 0  # the second scheduler, or a rerun
    storing(team, GB)  # more stored later that day: the day was charged already
    assert storage.storage_charge_team(team_id=team.pk, day=DAY, stored_bytes=3 * GB) is not None
    [operation] = storage_operations(team)
    assert operation.idempotency_key == f"storage:{team.pk}:2026-12-07"
    assert operation.details["bytes"] == 2 * GB
    assert operation.details["unpaid"] == "0.00"
    assert Account.objects.get(team=team).balance == Decimal("9.80")
    assert Account.objects.get(team=other).balance == Decimal("9.95")
    assert sum(e.amount for e in operation.entries.all()) == 0
    # The next day is charged again, at the bytes stored then.
    assert storage.storage_charge_all(day=DAY + dt.timedelta(days=1)) == 2
    assert Account.objects.get(team=team).balance == Decimal("9.50")


def test_without_enough_credit_charges_what_the_team_has(
    billing_on: None, fund: Any, price: Any
) -> None:
    team = TeamFactory()
    storing(team, 10 * GB)  # 1.00 for the day
    fund(team, "0.25", promotional=True)
    fund(team, "0.15")
    storage.storage_charge_all(day=DAY)
    [operation] = storage_operations(team)
    assert operation.details["cost"] == "1.00"
    assert operation.details["unpaid"] == "0.60"
    account = Account.objects.get(team=team)
    assert (account.balance, account.promotional_balance) == (Decimal(0), Decimal(0))
    storage.storage_charge_all(day=DAY)  # run again: still once
    assert len(storage_operations(team)) == 1


def test_a_team_without_credit_is_not_charged_and_never_negative(
    billing_on: None, price: Any
) -> None:
    team = TeamFactory()
    storing(team, GB)
    assert storage.storage_charge_all(day=DAY) == 0
    assert storage_operations(team) == []
    assert Account.objects.get(team=team).balance == Decimal(0)


def test_credit_held_by_a_running_training_is_not_spent(
    billing_on: None, fund: Any, price: Any
) -> None:
    from mlmanager.billing.services import ledger

    team = TeamFactory()
    storing(team, 10 * GB)
    fund(team, "1")
    ledger.reservation_hold(team_id=team.pk, kind="training", key="job:test", amount=Decimal("0.7"))
    storage.storage_charge_all(day=DAY)
    [operation] = storage_operations(team)
    assert operation.details["unpaid"] == "0.70"
    account = Account.objects.get(team=team)
    assert (account.balance, account.reserved) == (Decimal("0.7"), Decimal("0.7"))


def test_billing_off_or_no_price_charges_nothing(settings: Any, fund: Any) -> None:
    team = TeamFactory()
    storing(team, GB)
    fund(team, "10")
    assert storage.storage_charge_all(day=DAY) == 0  # billing off
    settings.MLMANAGER_BILLING = True
    Price.objects.filter(key=Price.Key.STORAGE_GB_MONTH).delete()
    assert storage.storage_charge_all(day=DAY) == 0  # no price set
    assert storage_operations(team) == []
