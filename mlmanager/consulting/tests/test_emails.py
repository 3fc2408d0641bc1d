"""Each step e-mails the other side once it commits (Django's outbox), and one walk goes
through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from mlmanager.accounts.models import Membership
from mlmanager.billing.errors import InsufficientCredits
from mlmanager.consulting import services
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.tests.conftest import World
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.core.tests.smtp import SITE_URL, Mailbox, smtp_server

State = ConsultingRequest.State


@pytest.fixture
def mailbox(settings: Any) -> Iterator[Mailbox]:
    with smtp_server(settings) as received:
        yield received


def _sent() -> list[tuple[list[str], str]]:
    """(recipients, subject) of each mail, then forget them."""
    sent = [(message.to, message.subject) for message in mail.outbox]
    mail.outbox.clear()
    return sent


def test_each_step_mails_the_other_side(
    world: World, committing: Callable[[], Any], settings: Any
) -> None:
    settings.MLMANAGER_SITE_URL = "http://mlmanager.test"
    team, consultant = world.caller(world.editor), world.caller(world.consultant)
    with committing():
        request = services.consulting_request_create(
            caller=team, category="api_integration", description="Webhook help"
        )
    assert sorted(_sent()) == [
        (["consultant@platform.test"], f"New consulting request #{request.pk} from Acme"),
        (["second@platform.test"], f"New consulting request #{request.pk} from Acme"),
    ]
    with committing():
        services.consulting_request_approve(caller=consultant, consulting_request=request)
    assert _sent() == [
        ([world.editor.email], f"Consulting request #{request.pk}: a consultant took it")
    ]
    with committing():
        services.consulting_request_contract(
            caller=consultant,
            consulting_request=request,
            amount=Decimal("30"),
            budget_estimate=Decimal("45.5"),
            delay_days=7,
        )
    [message] = mail.outbox
    assert message.to == [world.editor.email]
    assert "Amount: 30.00 USD" in message.body
    assert "Budget estimate: 45.50 USD" in message.body
    assert "Delay: 7 days" in message.body
    assert f"http://mlmanager.test/consulting/{request.pk}/" in message.body
    _sent()
    with committing():
        services.consulting_request_accept(caller=team, consulting_request=request)
    assert _sent() == [
        (
            ["consultant@platform.test"],
            f"Consulting request #{request.pk}: Acme accepted the contract",
        )
    ]
    with committing():
        services.consulting_request_finish(caller=consultant, consulting_request=request)
    assert _sent() == [([world.editor.email], f"Consulting request #{request.pk} is finished")]


def test_a_cancel_mails_the_side_that_did_not_cancel(
    world: World, walk: Callable[..., ConsultingRequest], committing: Callable[[], Any]
) -> None:
    by_team = walk(State.APPROVED)
    by_consultant = walk(State.CONTRACT)
    mail.outbox.clear()
    with committing():
        services.consulting_request_cancel(
            caller=world.caller(world.owner), consulting_request=by_team
        )
    assert _sent() == [
        (["consultant@platform.test"], f"Consulting request #{by_team.pk} was cancelled")
    ]
    with committing():
        services.consulting_request_cancel(
            caller=world.caller(world.consultant), consulting_request=by_consultant
        )
    [message] = mail.outbox
    assert message.to == [world.editor.email]
    assert f"{world.consultant.display_name} cancelled the request" in message.body


def test_an_open_request_cancelled_by_its_team_mails_nobody(
    world: World, walk: Callable[..., ConsultingRequest], committing: Callable[[], Any]
) -> None:
    request = walk(State.OPEN)
    mail.outbox.clear()
    with committing():
        services.consulting_request_cancel(
            caller=world.caller(world.editor), consulting_request=request
        )
    # No consultant took it: nobody on the other side was waiting on it.
    assert mail.outbox == []


def test_when_the_author_may_no_longer_act_every_editor_hears(
    world: World, walk: Callable[..., ConsultingRequest], committing: Callable[[], Any]
) -> None:
    request = walk(State.OPEN)
    Membership.objects.filter(user=world.editor).update(role=Membership.Role.VIEWER)
    second_editor = member(Membership.Role.EDITOR, world.team)
    mail.outbox.clear()
    with committing():
        services.consulting_request_approve(
            caller=world.caller(world.consultant), consulting_request=request
        )
    assert sorted(m.to[0] for m in mail.outbox) == sorted([world.owner.email, second_editor.email])


@pytest.mark.usefixtures("billing_on")
def test_a_refused_acceptance_mails_nobody(
    world: World, walk: Callable[..., ConsultingRequest], committing: Callable[[], Any]
) -> None:
    request = walk(State.CONTRACT, amount="30")
    mail.outbox.clear()
    with committing(), pytest.raises(InsufficientCredits):
        services.consulting_request_accept(
            caller=world.caller(world.editor), consulting_request=request
        )
    assert mail.outbox == []


def test_times_are_in_the_recipients_time_zone(
    world: World, walk: Callable[..., ConsultingRequest], committing: Callable[[], Any]
) -> None:
    world.editor.time_zone = "Asia/Tokyo"
    world.editor.save(update_fields=["time_zone"])
    request = walk(State.OPEN)
    mail.outbox.clear()
    with committing():
        services.consulting_request_approve(
            caller=world.caller(world.consultant), consulting_request=request
        )
    [message] = mail.outbox
    assert " JST." in message.body


@pytest.mark.django_db(transaction=True)
def test_the_steps_mails_go_through_a_real_smtp_server(world: World, mailbox: Mailbox) -> None:
    team = api_client_for(world.editor)
    consultant = api_client_for(world.consultant)
    request_id = team.post(
        "/api/v1/consulting/", {"category": "other", "description": "Help"}, format="json"
    ).json()["id"]
    assert consultant.post(f"/api/v1/consulting/{request_id}/approve/").status_code == 200
    assert (
        consultant.post(
            f"/api/v1/consulting/{request_id}/contract/",
            {"amount": "12", "budget_estimate": "15", "delay_days": 3},
            format="json",
        ).status_code
        == 200
    )
    [queued] = mailbox.to("consultant@platform.test")
    assert queued["Subject"] == f"New consulting request #{request_id} from Acme"
    assert [m["Subject"] for m in mailbox.to("second@platform.test")] == [queued["Subject"]]
    took, contract = mailbox.to(world.editor.email)
    assert took["Subject"] == f"Consulting request #{request_id}: a consultant took it"
    assert contract["Subject"] == f"Consulting request #{request_id}: a contract to accept"
    body = contract.get_content()
    assert "Amount: 12.00 USD" in body
    assert f"{SITE_URL}/consulting/{request_id}/" in body
