"""Consulting's test world: a team (an editor who asks, a viewer, an owner), another team, an
active consultant (a staff user with a Consultant row), a staff user who is not one, and a
helper that walks a request to any state through the services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.models import Membership
from mlmanager.billing.tests.conftest import billing_on, fund
from mlmanager.consulting import services
from mlmanager.consulting.models import Consultant, ConsultingRequest
from mlmanager.core.tests.factories import TeamFactory, UserFactory, member

__all__ = ["billing_on", "fund"]

State = ConsultingRequest.State
# The steps, in order, that bring a new request to each state.
PATH = [State.OPEN, State.APPROVED, State.CONTRACT, State.ACCEPTED, State.FINISHED]


@dataclass
class World:
    team: Any
    editor: Any
    viewer: Any
    owner: Any
    other_team: Any
    outsider: Any
    consultant: Any
    other_consultant: Any
    staff: Any

    def caller(self, user: Any) -> Caller:
        return Caller.for_session(user)


def make_consultant(**fields: Any) -> Any:
    user = UserFactory(is_staff=True, **fields)
    Consultant.objects.create(user=user)
    return user


@pytest.fixture
def world(db: None) -> World:
    team = TeamFactory(name="Acme")
    owner = member(Membership.Role.OWNER, team)
    editor = member(Membership.Role.EDITOR, team)
    viewer = member(Membership.Role.VIEWER, team)
    outsider = member(Membership.Role.OWNER)
    return World(
        team=team,
        editor=editor,
        viewer=viewer,
        owner=owner,
        other_team=outsider.current_team,
        outsider=outsider,
        consultant=make_consultant(email="consultant@platform.test"),
        other_consultant=make_consultant(email="second@platform.test"),
        staff=UserFactory(is_staff=True, email="staff@platform.test"),
    )


@pytest.fixture
def walk(world: World) -> Callable[..., ConsultingRequest]:
    """`walk(State.CONTRACT)`: a request of the world's team brought to that state by the
    services (amount 30 unless given); CANCELLED is reached from `cancelled_from`."""

    def to(
        state: str,
        *,
        amount: str = "30",
        cancelled_from: str = State.OPEN,
        **create: Any,
    ) -> ConsultingRequest:
        request = services.consulting_request_create(
            caller=world.caller(world.editor),
            category=create.pop("category", "model_performance"),
            description=create.pop("description", "Our churn model got worse."),
            **create,
        )
        target = cancelled_from if state == State.CANCELLED else state
        consultant = world.caller(world.consultant)
        team = world.caller(world.editor)
        for step in PATH[1 : PATH.index(target) + 1]:
            if step == State.APPROVED:
                services.consulting_request_approve(caller=consultant, consulting_request=request)
            elif step == State.CONTRACT:
                services.consulting_request_contract(
                    caller=consultant,
                    consulting_request=request,
                    amount=Decimal(amount),
                    budget_estimate=Decimal("40"),
                    delay_days=10,
                )
            elif step == State.ACCEPTED:
                services.consulting_request_accept(caller=team, consulting_request=request)
            elif step == State.FINISHED:
                services.consulting_request_finish(caller=consultant, consulting_request=request)
        if state == State.CANCELLED:
            services.consulting_request_cancel(caller=team, consulting_request=request)
        request.refresh_from_db()
        assert request.state == state
        return request

    return to
