"""The request's state machine, who may take each step, and the money each step moves."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from mlmanager.billing.errors import InsufficientCredits
from mlmanager.billing.models import Account, LedgerEntry, Operation, Reservation
from mlmanager.consulting import services
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.tests.conftest import World
from mlmanager.core.errors import NotFound, PermissionDenied

State = ConsultingRequest.State
ALL_STATES = [
    State.OPEN,
    State.APPROVED,
    State.CONTRACT,
    State.ACCEPTED,
    State.FINISHED,
    State.CANCELLED,
]


def _take(world: World, action: str, request: ConsultingRequest) -> ConsultingRequest:
    """Take `action` as the side that takes it (the consultant, or the team's editor)."""
    consultant = world.caller(world.consultant)
    team = world.caller(world.editor)
    if action == "approve":
        return services.consulting_request_approve(caller=consultant, consulting_request=request)
    if action == "contract":
        return services.consulting_request_contract(
            caller=consultant,
            consulting_request=request,
            amount=Decimal("5"),
            budget_estimate=Decimal("6"),
            delay_days=1,
        )
    if action == "accept":
        return services.consulting_request_accept(caller=team, consulting_request=request)
    if action == "finish":
        return services.consulting_request_finish(caller=consultant, consulting_request=request)
    return services.consulting_request_cancel(caller=team, consulting_request=request)


WRONG = [
    (state, action)
    for action, allowed in services.requests.ALLOWED_FROM.items()
    for state in ALL_STATES
    if state not in allowed
]


def test_every_wrong_state_action_is_listed() -> None:
    # 6 states × 5 actions, minus the 8 allowed moves.
    assert len(WRONG) == 22


@pytest.mark.parametrize(("state", "action"), WRONG)
def test_an_action_in_the_wrong_state_is_a_409_and_changes_nothing(
    world: World, walk: Callable[..., ConsultingRequest], state: str, action: str
) -> None:
    request = walk(state)
    before = ConsultingRequest.objects.filter(pk=request.pk).values().get()
    with pytest.raises(services.WrongState) as refused:
        _take(world, action, request)
    assert refused.value.status_code == 409
    assert refused.value.code == "wrong_state"
    assert refused.value.details["state"] == state
    assert refused.value.details["action"] == action
    assert ConsultingRequest.objects.filter(pk=request.pk).values().get() == before


def test_the_whole_path_sets_each_steps_time_and_fields(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.FINISHED, amount="12.5")
    assert request.consultant == world.consultant
    assert request.amount == Decimal("12.5")
    assert request.budget_estimate == Decimal("40")
    assert request.delay_days == 10
    assert request.created_at <= request.approved_at <= request.contract_at
    assert request.contract_at <= request.accepted_at <= request.finished_at
    assert request.cancelled_at is None


def test_a_stale_copy_cannot_move_a_request_twice(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN)
    stale = ConsultingRequest.objects.get(pk=request.pk)
    services.consulting_request_approve(
        caller=world.caller(world.consultant), consulting_request=request
    )
    with pytest.raises(services.WrongState):
        services.consulting_request_approve(
            caller=world.caller(world.other_consultant), consulting_request=stale
        )
    request.refresh_from_db()
    assert request.consultant == world.consultant


# --- who --------------------------------------------------------------------------------------


def test_staff_who_is_not_a_consultant_cannot_approve(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN)
    for user in (world.staff, world.editor, world.owner):
        with pytest.raises(PermissionDenied) as refused:
            services.consulting_request_approve(
                caller=world.caller(user), consulting_request=request
            )
        assert refused.value.code == "not_consultant"
    request.refresh_from_db()
    assert request.state == State.OPEN


def test_an_inactive_consultant_is_no_consultant(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN)
    world.consultant.consultant.is_active = False
    world.consultant.consultant.save()
    with pytest.raises(PermissionDenied):
        services.consulting_request_approve(
            caller=world.caller(world.consultant), consulting_request=request
        )


def test_another_consultant_cannot_take_the_next_steps(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.APPROVED)
    with pytest.raises(PermissionDenied) as refused:
        services.consulting_request_contract(
            caller=world.caller(world.other_consultant),
            consulting_request=request,
            amount=Decimal("1"),
            budget_estimate=Decimal("1"),
            delay_days=1,
        )
    assert refused.value.code == "not_your_request"
    with pytest.raises(PermissionDenied):
        services.consulting_request_cancel(
            caller=world.caller(world.other_consultant), consulting_request=request
        )


def test_a_viewer_cannot_accept_or_cancel_and_an_outsider_finds_nothing(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.CONTRACT)
    for step in (services.consulting_request_accept, services.consulting_request_cancel):
        with pytest.raises(PermissionDenied):
            step(caller=world.caller(world.viewer), consulting_request=request)
        with pytest.raises(NotFound):
            step(caller=world.caller(world.outsider), consulting_request=request)
    request.refresh_from_db()
    assert request.state == State.CONTRACT


def test_the_consultant_may_cancel_their_request(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.CONTRACT)
    services.consulting_request_cancel(
        caller=world.caller(world.consultant), consulting_request=request
    )
    request.refresh_from_db()
    assert request.state == State.CANCELLED
    assert request.cancelled_by == world.consultant


def test_a_model_of_another_team_is_refused_and_nothing_is_kept(world: World) -> None:
    from mlmanager.machines.models import Machine

    theirs = Machine.objects.create(
        team=world.other_team, name="Theirs", outputs=[], time_budget_s=60, storage_dir="x"
    )
    with pytest.raises(NotFound) as refused:
        services.consulting_request_create(
            caller=world.caller(world.editor),
            category="other",
            description="Look at this model",
            model_id=theirs.pk,
        )
    assert refused.value.code == "model_not_found"
    assert not ConsultingRequest.objects.exists()


def test_a_viewer_cannot_submit(world: World) -> None:
    with pytest.raises(PermissionDenied):
        services.consulting_request_create(
            caller=world.caller(world.viewer), category="other", description="Help"
        )


def test_a_bad_category_or_empty_description_is_refused(world: World) -> None:
    from django.core.exceptions import ValidationError

    for category, description in (("astrology", "Help"), ("other", "   ")):
        with pytest.raises(ValidationError):
            services.consulting_request_create(
                caller=world.caller(world.editor), category=category, description=description
            )
    assert not ConsultingRequest.objects.exists()


# --- money ------------------------------------------------------------------------------------


def _account(team: Any) -> Account:
    return Account.objects.get(team_id=team.pk)


def _entries_sum_to_zero() -> None:
    for operation in Operation.objects.all():
        assert operation.entries.aggregate(total=Sum("amount"))["total"] == 0, operation.kind


@pytest.mark.usefixtures("billing_on")
def test_accept_holds_the_amount_and_finish_pays_it_to_the_platform(
    world: World, walk: Callable[..., ConsultingRequest], fund: Callable[..., Account]
) -> None:
    fund(world.team, "100")
    request = walk(State.ACCEPTED, amount="30")
    hold = Reservation.objects.get(key=f"consulting:{request.pk}")
    assert (hold.kind, hold.amount, hold.status) == ("consulting", Decimal("30"), "held")
    account = _account(world.team)
    assert (account.balance, account.reserved, account.available) == (
        Decimal("100"),
        Decimal("30"),
        Decimal("70"),
    )

    services.consulting_request_finish(
        caller=world.caller(world.consultant), consulting_request=request
    )
    hold.refresh_from_db()
    assert hold.status == "settled"
    payment = hold.operation
    assert payment is not None and payment.kind == Operation.Kind.CONSULTING
    account = _account(world.team)
    assert (account.balance, account.reserved) == (Decimal("70"), Decimal("0"))
    platform = Account.objects.get(kind=Account.Kind.PLATFORM)
    assert LedgerEntry.objects.filter(operation=payment, account=platform).get().amount == Decimal(
        "30"
    )
    _entries_sum_to_zero()


@pytest.mark.usefixtures("billing_on")
def test_cancel_after_accept_releases_the_hold(
    world: World, walk: Callable[..., ConsultingRequest], fund: Callable[..., Account]
) -> None:
    fund(world.team, "100")
    operations = Operation.objects.count()
    request = walk(State.CANCELLED, cancelled_from=State.ACCEPTED, amount="30")
    hold = Reservation.objects.get(key=f"consulting:{request.pk}")
    assert hold.status == "released"
    account = _account(world.team)
    assert (account.balance, account.reserved) == (Decimal("100"), Decimal("0"))
    assert Operation.objects.count() == operations  # nothing was charged
    _entries_sum_to_zero()


@pytest.mark.usefixtures("billing_on")
def test_accept_without_enough_credit_is_402_and_the_request_stays_in_contract(
    world: World, walk: Callable[..., ConsultingRequest], fund: Callable[..., Account]
) -> None:
    fund(world.team, "10")
    request = walk(State.CONTRACT, amount="30")
    with pytest.raises(InsufficientCredits) as refused:
        services.consulting_request_accept(
            caller=world.caller(world.editor), consulting_request=request
        )
    assert refused.value.status_code == 402
    assert refused.value.details == {"needed": "30.00", "available": "10.00"}
    request.refresh_from_db()
    assert request.state == State.CONTRACT
    assert request.accepted_at is None
    assert not Reservation.objects.exists()
    assert _account(world.team).reserved == Decimal("0")

    # With more credit the same request is accepted.
    fund(world.team, "25")
    services.consulting_request_accept(
        caller=world.caller(world.editor), consulting_request=request
    )
    assert Reservation.objects.get(key=f"consulting:{request.pk}").amount == Decimal("30")


def test_with_billing_off_the_whole_path_moves_no_money(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    walk(State.FINISHED, amount="30")
    walk(State.CANCELLED, cancelled_from=State.ACCEPTED, amount="30")
    assert not Reservation.objects.exists()
    assert not Operation.objects.exists()
    assert not LedgerEntry.objects.exists()
